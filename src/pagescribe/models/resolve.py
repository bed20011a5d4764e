"""Find the GGUF pair a user means: a file, a directory (``/opt/ml/model``), a manifest, or a hub repo id.

Resolution only locates files; ``validate`` checks them before llama.cpp sees them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pagescribe.errors import ModelInvalid, ModelNotFound
from pagescribe.models.files import SAGEMAKER_MODEL_DIR, ModelFiles
from pagescribe.models.validate import gguf_architecture

MANIFEST_NAME = "pagescribe-model.json"
# org/name, optionally :QUANT to pick one of several text GGUFs (e.g. "someorg/llava-1.5-7b-gguf:Q4_K_M")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?$")

HOW_TO_GET_A_MODEL = (
    "Pass --model (a .gguf file, a directory holding the text GGUF and its mmproj GGUF, or a hub repo id "
    "such as org/name), or set PAGESCRIBE_MODEL. For a random-weight test model run: "
    "pagescribe model synth --preset tiny --out models/tiny"
)


def resolve_model(spec: str | Path | None, *, mmproj: str | Path | None = None) -> ModelFiles:
    """Turn what the user gave into a ``ModelFiles``; raise ``ModelNotFound`` with what to do instead.

    ``spec`` comes from the settings (``--model`` or ``PAGESCRIBE_MODEL``, read there); without one, SageMaker's
    model directory is used when it exists.
    """
    mmproj = mmproj or None
    if spec is None or str(spec) == "":
        if SAGEMAKER_MODEL_DIR.is_dir():
            return _from_directory(SAGEMAKER_MODEL_DIR, mmproj)
        raise ModelNotFound(f"No model given. {HOW_TO_GET_A_MODEL}")
    path = Path(spec).expanduser()
    if path.is_dir():
        return _from_directory(path, mmproj)
    if path.is_file():
        return _from_text_file(path, mmproj)
    if _REPO_ID.match(str(spec)) and not str(spec).startswith((".", "/")):
        from pagescribe.models.hub import download_from_hub

        return _from_directory(download_from_hub(str(spec)), mmproj)
    raise ModelNotFound(f"{path}: no such file or directory. {HOW_TO_GET_A_MODEL}")


def _from_text_file(text: Path, mmproj: str | Path | None) -> ModelFiles:
    if mmproj is not None:
        projector = Path(mmproj).expanduser()
        if not projector.is_file():
            raise ModelNotFound(f"{projector}: mmproj file not found")
    else:
        candidates = [p for p in _ggufs(text.parent) if p != text and _is_projector(p)]
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise ModelNotFound(
                f"{text}: cannot tell which mmproj (vision projector) GGUF goes with it "
                f"(found in {text.parent}: {found}); pass --mmproj"
            )
        projector = candidates[0]
    return ModelFiles(text=text, mmproj=projector, model_id=_model_id(text))


def _from_directory(directory: Path, mmproj: str | Path | None) -> ModelFiles:
    manifest = directory / MANIFEST_NAME
    if manifest.is_file():
        return _from_manifest(manifest, mmproj)
    ggufs = _ggufs(directory)
    projectors = [p for p in ggufs if _is_projector(p)]
    texts = [p for p in ggufs if p not in projectors]
    if not texts:
        raise ModelNotFound(f"{directory}: no text-model GGUF file found. {HOW_TO_GET_A_MODEL}")
    if len(texts) > 1:
        names = ", ".join(p.name for p in texts)
        raise ModelNotFound(
            f"{directory}: several text-model GGUF files ({names}); name one with --model FILE "
            f"or write {MANIFEST_NAME} there"
        )
    if mmproj is None and len(projectors) != 1:
        names = ", ".join(p.name for p in projectors) or "none"
        raise ModelNotFound(
            f"{directory}: expected one mmproj (vision projector) GGUF, found {names}; pass --mmproj"
        )
    return _from_text_file(texts[0], mmproj or projectors[0])


def _from_manifest(manifest: Path, mmproj: str | Path | None) -> ModelFiles:
    """Manifest: ``{"text": "model.gguf", "mmproj": "mmproj.gguf", "model_id": "optional name"}``."""
    try:
        data = json.loads(manifest.read_text())
        text = manifest.parent / str(data["text"])
        projector = Path(mmproj) if mmproj else manifest.parent / str(data["mmproj"])
        model_id = str(data.get("model_id") or _model_id(text))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelInvalid(
            f"{manifest}: unreadable manifest ({exc}); expected JSON with 'text' and 'mmproj' file names"
        ) from exc
    for path in (text, projector):
        if not path.is_file():
            raise ModelNotFound(f"{path}: named in {manifest} but not found")
    return ModelFiles(text=text, mmproj=projector, model_id=model_id)


def _ggufs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.gguf") if p.is_file())


def _is_projector(path: Path) -> bool:
    arch = gguf_architecture(path)
    if arch is not None:
        return arch == "clip"
    return "mmproj" in path.name.lower()


def _model_id(text: Path) -> str:
    return text.stem
