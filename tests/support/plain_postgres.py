"""A private PostgreSQL from Debian's packages, which has no pgvector: for the test that a
server without the extension gets a clear error. Own datadir, port and socket directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.mariadb import free_port

BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def available() -> bool:
    return any((b / "initdb").exists() for b in BINDIRS)


@dataclass
class PlainPostgres:
    root: Path
    bindir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str]) -> None:
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start() -> PlainPostgres:
    bindir = next(b for b in BINDIRS if (b / "initdb").exists())
    root = Path(tempfile.mkdtemp(prefix="recpipe-plainpg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    _run([str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--no-sync"])
    _run([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-o",
          f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
    return PlainPostgres(root, bindir, port)
