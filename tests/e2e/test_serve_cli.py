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


KEY = "e2e-key-abcdefghijklmnop"


def test_an_exposed_service_needs_a_key_and_never_shows_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("demo", "--scale", "tiny", "--json", home=home).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")} | {"RECPIPE_HOME": str(home)}
    # a non-loopback address without a key is refused before anything listens
    refused = run("serve", "--host", "0.0.0.0", home=home)
    assert refused.returncode == 2 and "RECPIPE_API_KEY" in refused.stderr and "--insecure" in refused.stderr
    # with two workers: the key reaches every process
    server, url = serve.start(env | {"RECPIPE_API_KEY": KEY}, workers=2, args=("--log-level", "info"))
    try:
        assert serve.wait_ready(url, key=KEY), "the service did not become ready"
        assert httpx.get(f"{url}/health").status_code == 200  # open: load balancers probe it
        for headers in ({}, {"Authorization": "Bearer wrong-key-abcdefghijk"}, {"Authorization": KEY}):
            r = httpx.get(f"{url}/recommendations/999999", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
            assert KEY not in r.text and set(r.json()) == {"error", "hint"}
        ok = httpx.get(f"{url}/recommendations/999999", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        # the same port again: one clear line, before "serving on"
        port = url.rsplit(":", 1)[1]
        taken = run("serve", "--port", port, home=home)
        assert taken.returncode == 3 and "cannot listen" in taken.stderr and "serving on" not in taken.stderr
    finally:
        server.terminate()
        server.wait(20)
        run("vectors", "stop", home=home)
    log = server.stderr.read()
    assert f"recommendation_id={ok.headers['x-recommendation-id']}" in log  # the request log
    assert KEY not in log
    shown = run("config", "--json", home=home, env={"RECPIPE_API_KEY": KEY})
    assert KEY not in shown.stdout and '"***"' in shown.stdout
