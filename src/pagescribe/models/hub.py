"""Download a GGUF pair from a model hub repository (huggingface_hub: progress bars, resumable, cached)."""

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
        raise _unreachable(spec, exc) from exc
    wanted = _choose_files(spec, files, quant)
    try:
        directory = snapshot_download(repo_id, allow_patterns=wanted)
    except Exception as exc:
        raise _unreachable(spec, exc) from exc
    return Path(directory)


def _unreachable(spec: str, exc: Exception) -> ModelNotFound:
    return ModelNotFound(
        f"{spec}: could not download from the model hub ({type(exc).__name__}: {exc}). "
        "Without network access, download the GGUF files elsewhere and pass --model DIR "
        "(or mount them at /opt/ml/model)."
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
