"""Office documents (PPTX, DOCX, ODP, XLSX, ...) to PDF with headless LibreOffice, to render like any PDF."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pagescribe.pipeline.errors import ConverterUnavailable, CorruptDocument

_PACKAGES = {
    ".pptx": "libreoffice-impress",
    ".ppt": "libreoffice-impress",
    ".odp": "libreoffice-impress",
    ".xlsx": "libreoffice-calc",
    ".xls": "libreoffice-calc",
    ".ods": "libreoffice-calc",
}
_DEFAULT_PACKAGE = "libreoffice-writer"


def find_soffice() -> str | None:
    """The LibreOffice executable on PATH, if any."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def debian_package_for(path: Path) -> str:
    """The Debian package whose LibreOffice component opens ``path``."""
    return _PACKAGES.get(path.suffix.lower(), _DEFAULT_PACKAGE)


def office_to_pdf(path: Path, *, work_dir: Path, timeout_s: float = 300.0) -> Path:
    """Convert ``path`` to a PDF inside a fresh folder under ``work_dir`` and return the PDF's path.

    Each call uses its own LibreOffice profile, so conversions may run side by side and never touch the user's
    settings. Raises ``ConverterUnavailable`` (naming the Debian package) when LibreOffice is not installed or
    does not finish, ``CorruptDocument`` when it cannot read the file.
    """
    exe = find_soffice()
    if exe is None:
        package = debian_package_for(path)
        raise ConverterUnavailable(
            f"{path}: converting {path.suffix or 'this file'} needs LibreOffice, which is not installed; "
            f"install the Debian package {package} (apt-get install {package})"
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(prefix="office-", dir=work_dir))
    with tempfile.TemporaryDirectory(prefix="pagescribe-lo-profile-") as profile:
        cmd = [
            exe,
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out_dir),
            str(path.resolve()),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ConverterUnavailable(f"{path}: LibreOffice did not finish within {timeout_s:g} s") from exc
    pdf = out_dir / f"{path.stem}.pdf"
    if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        why = detail[-1] if detail else f"exit status {proc.returncode}"
        raise CorruptDocument(f"{path}: LibreOffice could not convert it to PDF ({why})")
    return pdf
