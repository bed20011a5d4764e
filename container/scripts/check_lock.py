#!/usr/bin/env python3
"""Fail when the running environment holds a distribution the lock file does not pin, or at another version.

The image installs the runtime subset of ``requirements.lock`` with the lock as pip constraints; constraints pin
what they name but let anything they do not name through at any version. This check closes that gap:

    python3 check_lock.py requirements.lock [--ignore NAME ...]

Standard library only: it runs inside the image's builder stage.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def canonical(name: str) -> str:
    """The PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(lock_text: str) -> dict[str, str]:
    """``name -> version`` for every ``name==version`` line of a pip-compile / uv lock file."""
    pins: dict[str, str] = {}
    for line in lock_text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match[1])] = match[2]
    return pins


def installed() -> dict[str, str]:
    """``name -> version`` of every distribution visible to this interpreter."""
    return {canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def problems(pins: Mapping[str, str], present: Mapping[str, str], *, ignore: Iterable[str] = ()) -> list[str]:
    """One line per installed distribution that the lock does not pin, or pins at another version."""
    skipped = {canonical(name) for name in ignore}
    found = []
    for name, version in sorted(present.items()):
        if name in skipped:
            continue
        if name not in pins:
            found.append(f"{name}=={version} is installed but not in the lock file")
        elif pins[name] != version:
            found.append(f"{name}=={version} is installed but the lock file pins {pins[name]}")
    return found


def main(argv: list[str] | None = None) -> int:
    """Check this interpreter's environment against the lock file; print what differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--ignore", nargs="*", default=[], help="distributions not expected in the lock")
    args = parser.parse_args(argv)
    found = problems(read_pins(args.lock.read_text(encoding="utf-8")), installed(), ignore=args.ignore)
    for line in found:
        print(f"check_lock: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
