"""Download a GGUF pair from a model hub repository (huggingface_hub: progress bars, resumable, cached)."""

from __future__ import annotations

from pathlib import Path

from pagescribe.errors import ModelNotFound


def download_from_hub(spec: str) -> Path:
    """Fetch one text GGUF and one mmproj GGUF of ``org/name[:QUANT]``; return the snapshot directory.

    QUANT picks the text file whose name contains it (case-insensitive) when the repo holds several.
    """
    repo_id, _, quant = spec.partition(":")
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelNotFound(f"{spec}: huggingface_hub is not installed") from exc
    try:
        files = HfApi().list_repo_files(repo_id)
        wanted = _choose_files(spec, files, quant)
        directory = snapshot_download(repo_id, allow_patterns=wanted)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise ModelNotFound(
            f"{spec}: could not download from the model hub ({type(exc).__name__}: {exc}). "
            "Without network access, download the GGUF files elsewhere and pass --model DIR "
            "(or mount them at /opt/ml/model)."
        ) from exc
    return Path(directory)


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
