"""``recpipe serve`` as users run it, after ``recpipe demo``: one process and two."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import run
from tests.support import serve

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_after_the_demo(tmp_path: Path, workers: int) -> None:
    home = tmp_path / "home"
    assert run("demo", "--scale", "tiny", "--json", home=home).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")} | {"RECPIPE_HOME": str(home)}
    server, url = serve.start(env, workers=workers)
    try:
        assert serve.wait_ready(url), "the service did not become ready"
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 200, ready.text
        rec = httpx.get(f"{url}/recommendations/999999", params={"k": 3}).json()
        assert rec["strategy"] == "popular" and len(rec["items"]) == 3
        for _ in range(4):
            httpx.get(f"{url}/health")
        metrics = httpx.get(f"{url}/metrics").text
        counted = [line for line in metrics.splitlines()
                   if line.startswith('recpipe_http_requests_total{method="GET",route="/health"')]
        assert counted and float(counted[0].rsplit(" ", 1)[1]) == 4.0  # summed over the workers
    finally:
        server.terminate()
        server.wait(20)
        run("vectors", "stop", home=home)
    assert server.returncode in (0, -15), server.stderr.read()
