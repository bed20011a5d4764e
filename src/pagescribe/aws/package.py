"""Package a model directory for SageMaker and upload it to S3 with a checksum manifest.

Two layouts, both mounted by SageMaker at ``/opt/ml/model``:

- ``prefix`` (default): the files as they are under ``s3://bucket/prefix/``, plus ``pagescribe-model.json``; SageMaker
  copies the prefix without extracting anything, which starts a 4 GB model faster.
- ``tar.gz``: ``prefix/model.tar.gz`` (files + manifest inside) and ``prefix/manifest.json`` beside it, which
  also records the archive's own checksum.

The manifest is uploaded last, so its presence means the upload finished.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pagescribe import __version__
from pagescribe.aws.s3 import S3Location
from pagescribe.errors import InvalidRequest, ModelNotFound, PagescribeError
from pagescribe.models.resolve import MANIFEST_NAME, resolve_model  # the manifest `--model DIR` reads back

MANIFEST_FORMAT = "pagescribe-model/1"
ARCHIVE_NAME = "model.tar.gz"
_CHUNK = 8 * 1024 * 1024


class PrefixNotEmpty(InvalidRequest):
    """The target prefix holds objects that are not part of this package; SageMaker would serve them too."""


@dataclass(frozen=True, slots=True)
class PackageResult:
    """What was uploaded and the URL to give SageMaker (``ModelDataUrl`` or the ``S3Prefix`` source)."""

    model_data_url: str
    manifest: dict[str, Any]
    uploaded: tuple[str, ...]
    compressed: bool


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so multi-GB models stay out of memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def collect_files(model_dir: Path) -> list[Path]:
    """Regular files under ``model_dir`` (symlinks followed), hidden ones and an old manifest left out."""
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
        and p.relative_to(model_dir).as_posix() != MANIFEST_NAME
    )
    if not any(p.suffix == ".gguf" for p in files):
        raise ModelNotFound(f"no .gguf file in {model_dir}", param="model_dir")
    return files


def build_manifest(model_dir: Path, files: list[Path]) -> dict[str, Any]:
    """The manifest: every file's path, size and SHA-256, and which GGUF is the text model / the projector."""
    entries = [
        {"path": p.relative_to(model_dir).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in files
    ]
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "created_by": f"pagescribe {__version__}",
        "files": entries,
    }
    # Name the pair only when it is unambiguous (the same rules as `--model DIR`); otherwise the loader decides.
    try:
        pair = resolve_model(model_dir)
    except PagescribeError:
        return manifest
    manifest["text"] = pair.text.relative_to(model_dir).as_posix()
    manifest["mmproj"] = pair.mmproj.relative_to(model_dir).as_posix()
    manifest["model_id"] = pair.model_id
    return manifest


def write_archive(model_dir: Path, files: list[Path], manifest: dict[str, Any], dest: Path) -> Path:
    """``model.tar.gz`` with the files and the manifest at its root (extracted into /opt/ml/model)."""
    manifest_path = dest.parent / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    with tarfile.open(dest, "w:gz") as archive:
        for path in files:
            archive.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
        archive.add(manifest_path, arcname=MANIFEST_NAME)
    return dest


def package_model(
    model_dir: Path,
    s3_uri: str,
    *,
    compress: bool = False,
    replace: bool = False,
    s3_client: Any = None,
    on_upload: Callable[[str], None] | None = None,
) -> PackageResult:
    """Hash, (optionally) archive and upload ``model_dir`` to ``s3_uri``; return the model data URL."""
    location = S3Location.parse(s3_uri)
    model_dir = model_dir.resolve()
    files = collect_files(model_dir)
    manifest = build_manifest(model_dir, files)
    uploader = _Uploader(s3_client if s3_client is not None else _s3_client(), location, on_upload)
    if compress:
        manifest = _upload_archive(uploader, model_dir, files, manifest)
        data_url = location.uri(ARCHIVE_NAME)
    else:
        names = [p.relative_to(model_dir).as_posix() for p in files]
        _check_prefix(uploader.s3, location, {*names, MANIFEST_NAME}, replace=replace)
        for path, name in zip(files, names, strict=True):
            uploader.put_file(path, name)
        data_url = location.uri()
    # Last, so a manifest in S3 means every file before it arrived.
    uploader.put_bytes((json.dumps(manifest, indent=2) + "\n").encode(), MANIFEST_NAME)
    return PackageResult(data_url, manifest, tuple(uploader.uploaded), compress)


@dataclass
class _Uploader:
    s3: Any
    location: S3Location
    on_upload: Callable[[str], None] | None
    uploaded: list[str] = field(default_factory=list)

    def put_file(self, path: Path, name: str) -> None:
        self.s3.upload_file(str(path), self.location.bucket, self.location.prefix + name)
        self._done(name)

    def put_bytes(self, body: bytes, name: str) -> None:
        key = self.location.prefix + name
        self.s3.put_object(Bucket=self.location.bucket, Key=key, Body=body, ContentType="application/json")
        self._done(name)

    def _done(self, name: str) -> None:
        self.uploaded.append(self.location.uri(name))
        if self.on_upload is not None:
            self.on_upload(self.location.uri(name))


def _upload_archive(
    uploader: _Uploader, model_dir: Path, files: list[Path], manifest: dict[str, Any]
) -> dict[str, Any]:
    """Upload ``model.tar.gz``; return the outer manifest, which adds the archive's own checksum."""
    with tempfile.TemporaryDirectory(prefix="pagescribe-package-") as tmp:
        archive = write_archive(model_dir, files, manifest, Path(tmp) / ARCHIVE_NAME)
        entry = {"path": ARCHIVE_NAME, "size": archive.stat().st_size, "sha256": sha256_file(archive)}
        uploader.put_file(archive, ARCHIVE_NAME)
    return {**manifest, "archive": entry}


def _check_prefix(s3: Any, location: S3Location, names: set[str], *, replace: bool) -> None:
    """SageMaker copies *everything* under an S3Prefix, so foreign objects there would end up in the model."""
    stale: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix):
        stale += [o["Key"] for o in page.get("Contents", []) if o["Key"][len(location.prefix) :] not in names]
    if not stale:
        return
    if not replace:
        shown = ", ".join(stale[:5]) + (" ..." if len(stale) > 5 else "")
        raise PrefixNotEmpty(
            f"{location.uri()} already holds {len(stale)} other object(s) ({shown}); use a new prefix "
            "or replace=True to delete them",
            param="s3",
        )
    for start in range(0, len(stale), 1000):
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3.delete_objects(Bucket=location.bucket, Delete={"Objects": batch, "Quiet": True})


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")
