"""Comparing what is on disk before and after a fault."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_fingerprint(root: Path) -> str:
    """A fingerprint of every file under ``root`` (names and bytes; hidden lock files aside)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and "_staging" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()
