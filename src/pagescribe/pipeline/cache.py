"""The resume cache: a finished page's transcription, keyed by everything that decides it.

The key is a hash of the page image's pixels, the prompt id, the transcription parameters, the anchor text and
the model id, so a rerun finds every page it finished before, even when the file was renamed or moved, and a
changed prompt, parameter or model never gets an old answer. Each entry is its own small JSON file written
atomically: a run killed at any instant leaves complete entries or none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pagescribe.pipeline.records import Transcription
from pagescribe.pipeline.writers import atomic_write_text

# Bump when the meaning of a cached transcription changes, so old entries are not reused.
CACHE_VERSION = 1


def cache_key(
    *,
    image_sha256: str,
    prompt_id: str,
    parameters: Mapping[str, Any],
    model_id: str,
    anchor: str | None,
) -> str:
    """A stable hex key for one page request."""
    material = {
        "version": CACHE_VERSION,
        "image": image_sha256,
        "prompt": prompt_id,
        "parameters": parameters,
        "model": model_id,
        "anchor": None if anchor is None else hashlib.sha256(anchor.encode("utf-8")).hexdigest(),
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class PageCache:
    """Transcriptions on disk under ``root`` (one file per key, fanned out over 256 folders)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Transcription | None:
        """The cached transcription, or None when absent or unreadable (then the page is simply redone)."""
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Transcription.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, transcription: Transcription) -> None:
        """Store a transcription; transient failures are not stored, so a rerun tries those pages again."""
        if transcription.transient:
            return
        atomic_write_text(self._path(key), json.dumps(transcription.to_json(), ensure_ascii=False))
