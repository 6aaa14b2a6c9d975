"""`recpipe serve` in a child process, for e2e tests and bench/serve.py."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.support.mariadb import free_port


def start(env: dict[str, str], *, workers: int = 1, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], str]:
    """Start the service on a free 127.0.0.1 port; return the process and its base URL."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "recpipe", "serve", "--port", str(port), "--workers", str(workers),
                               *args],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return server, f"http://127.0.0.1:{port}"


def wait_ready(url: str, seconds: float = 30, *, key: str | None = None) -> bool:
    """Poll /ready until it answers 200 (True) or ``seconds`` pass (False)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1, headers=headers).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False
