"""A private MariaDB server for tests and benchmarks: own datadir, own port, 127.0.0.1 only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "recpipe", "recpipe-test-pw"


@dataclass
class MariaDB:
    datadir: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"mysql+pymysql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self.admin(f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        return self.url(name)

    def admin(self, sql: str) -> str:
        out = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.datadir / 'mysqld.sock'}", "-uroot",
             "--batch", "-e", sql], capture_output=True, text=True, check=True)
        return out.stdout

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.datadir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    return shutil.which("mariadbd") is not None or Path("/usr/sbin/mariadbd").exists()


def start(buffer_pool: str = "512M") -> MariaDB:
    """Initialise a throw-away datadir and start mariadbd on a free port; ready in about 1 s."""
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    datadir = Path(tempfile.mkdtemp(prefix="recpipe-mariadb-"))
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}",
                    "--auth-root-authentication-method=socket", "--skip-test-db", *user],
                   check=True, capture_output=True)
    port = free_port()
    sock = datadir / "mysqld.sock"
    log = open(datadir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [mariadbd, "--no-defaults", f"--datadir={datadir}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={datadir / 'mysqld.pid'}",
         "--local-infile=1", "--skip-log-bin", f"--innodb-buffer-pool-size={buffer_pool}",
         "--innodb-flush-log-at-trx-commit=2", "--innodb-log-file-size=256M", "--character-set-server=utf8mb4",
         "--collation-server=utf8mb4_unicode_ci", "--max-allowed-packet=256M", *user],
        stdout=log, stderr=subprocess.STDOUT)
    server = MariaDB(datadir, port, process)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {(datadir / 'server.log').read_text()[-2000:]}")
        try:
            server.admin("SELECT 1")
            break
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("mariadbd did not become ready within 30 s") from None
            time.sleep(0.1)
    server.admin(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';"
                 f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'; FLUSH PRIVILEGES;")
    return server
