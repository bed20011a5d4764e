"""Download a GGUF pair from a model hub repository (huggingface_hub: progress bars, resumable, cached).

huggingface_hub shows a progress bar per file, writes into ``<file>.incomplete`` and picks an interrupted download
up where it stopped, and keeps what it fetched in its cache (``HF_HOME``), so a second ``pull`` (or a ``--model
org/name`` that was pulled before) reads the cache. Without network access (``HF_HUB_OFFLINE=1``, or an endpoint that
does not answer), files already cached are used; otherwise the error says what to do instead.
"""

from __future__ import annotations

from pathlib import Path

from pagescribe.errors import ModelNotFound


def download_from_hub(spec: str) -> Path:
    """Fetch one text GGUF and one mmproj GGUF of ``org/name[:QUANT]``; return the snapshot directory.

    QUANT picks the text file whose name contains it (case-insensitive) when the repo holds several.
    """
    repo_id, _, quant = spec.partition(":")
    from huggingface_hub import HfApi, snapshot_download

    try:
        files = HfApi().list_repo_files(repo_id)
    except Exception as exc:  # the hub client's transport errors differ between its versions
        cached = _from_cache(repo_id)
        if cached is not None:
            return cached
        raise _unreachable(spec, exc) from exc
    wanted = _choose_files(spec, files, quant)
    try:
        directory = snapshot_download(repo_id, allow_patterns=wanted)
    except Exception as exc:
        raise _unreachable(spec, exc) from exc
    return Path(directory)


def _from_cache(repo_id: str) -> Path | None:
    """The snapshot of ``repo_id`` already in the local cache, if it holds GGUF files (offline use)."""
    from huggingface_hub import snapshot_download

    try:
        directory = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached
        return None
    return directory if any(directory.glob("*.gguf")) else None


def _unreachable(spec: str, exc: Exception) -> ModelNotFound:
    repo_id = spec.partition(":")[0]
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ModelNotFound(
        f"{spec}: could not download from the model hub and it is not in the local cache "
        f"({type(exc).__name__}: {first}). Without network access: run `pagescribe model pull {spec}` on a machine "
        f"that has it and copy its huggingface cache (HF_HOME) here, or download the text GGUF and the mmproj GGUF "
        f"of {repo_id} into a directory and pass --model DIR (or mount it at /opt/ml/model)."
    )


def _choose_files(spec: str, files: list[str], quant: str) -> list[str]:
    ggufs = [f for f in files if f.endswith(".gguf")]
    projectors = [f for f in ggufs if "mmproj" in f.lower()]
    texts = [f for f in ggufs if f not in projectors]
    if quant:
        texts = [f for f in texts if quant.lower() in f.lower()]
    if len(texts) != 1 or not projectors:
        raise ModelNotFound(
            f"{spec}: expected one text GGUF and an mmproj GGUF; found text {texts or 'none'}, "
            f"mmproj {projectors or 'none'}. Add :QUANT (e.g. {spec.split(':')[0]}:Q4_K_M) to choose."
        )
    # prefer an f16 projector when several precisions are published
    projector = sorted(projectors, key=lambda f: ("f16" not in f.lower(), f))[0]
    return [texts[0], projector]
