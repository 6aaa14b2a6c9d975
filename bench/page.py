"""The page's customer view in a real browser against the API calls it makes, on the demo's data.

    python bench/page.py [--samples 30] [--work DIR]

Set-up through recpipe itself: `recpipe demo --scale small` (2,000 customers, 200 products),
then `recpipe serve` in its own process. Measured, for customers with a stored embedding:

1. page, cold: a new browser tab opens ``/#/customers/<n>`` until the recommendations are on
   screen (HTML, script, the profile, the product lines, /recommendations and the names),
   from the navigation's start to the page's own mark ``recpipe:recommendations-shown``;
2. page, rule change: in an open view, k changes and the new list is on screen (between the
   page's marks ``recpipe:rules`` and ``recpipe:recommendations-shown``);
3. baseline: the same four API calls made one after another by an HTTP client (httpx), no
   browser; and /recommendations alone.

Debian's chromium through playwright; everything on the same 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, report
from tests.support.serve import start, wait_ready


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1), "samples": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="recpipe-bench-page-"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}, "RECPIPE_HOME": str(work / "home")}
    print(f"  building the demo's data in {work}", flush=True)
    subprocess.run([sys.executable, "-m", "recpipe", "demo", "--scale", "small", "--json"], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)
    server, url = start(env)
    try:
        if not wait_ready(url, 60):
            raise SystemExit(f"recpipe serve did not become ready: {server.communicate()[1][-2000:]}")
        customers = [c["id"] for c in httpx.get(f"{url}/customers", params={"limit": 100}).json()
                     if c["stored_embedding"]][:args.samples]
        results = {"shop": "the demo's (small: 2,000 customers, 200 products)", "customers": len(customers),
                   **measure(url, customers)}
    finally:
        server.terminate()
        server.wait(10)
        subprocess.run([sys.executable, "-m", "recpipe", "vectors", "stop"], env=env, capture_output=True)
    api = results["api_calls"]["p50_ms"]
    results["ratios"] = {"page_cold_vs_api_calls": round(results["page_cold"]["p50_ms"] / api, 2),
                         "rule_change_vs_api_calls": round(results["rule_change"]["p50_ms"] / api, 2)}
    report("page", "the customer view (ms)", ("measure", "p50", "p95", "samples"),
           [(name, results[name]["p50_ms"], results[name]["p95_ms"], results[name]["samples"])
            for name in ("page_cold", "rule_change", "api_calls", "recommendations_only")], results)


def measure(url: str, customers: list[int]) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    cold, change, calls, alone = [], [], [], []
    with httpx.Client(base_url=url) as client:
        for n in customers:
            t0 = time.perf_counter()
            client.get(f"/customers/{n}").raise_for_status()
            client.get("/product_lines").raise_for_status()
            rec = client.get(f"/recommendations/{n}", params={"k": 10, "exclude_bought": "true", "in_stock": "true"})
            client.get("/products", params=[("ids", i["id"]) for i in rec.json()["items"]]).raise_for_status()
            calls.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.get(f"/recommendations/{n}", params={"k": 10}).raise_for_status()
            alone.append(time.perf_counter() - t0)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        for n in customers:
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{url}/#/customers/{n}")
            page.wait_for_selector("#recommendations a[data-product]")
            cold.append(page.evaluate("performance.getEntriesByName('recpipe:recommendations-shown')[0].startTime")
                        / 1000)
            page.evaluate("performance.clearMarks()")
            page.fill("#rule-k", "5")
            page.dispatch_event("#rules", "change")
            page.wait_for_function("document.querySelectorAll('#recommendations a[data-product]').length === 5")
            change.append(page.evaluate("performance.getEntriesByName('recpipe:recommendations-shown')[0].startTime"
                                        " - performance.getEntriesByName('recpipe:rules')[0].startTime") / 1000)
            context.close()
        browser.close()
    return {"page_cold": quantiles(cold), "rule_change": quantiles(change), "api_calls": quantiles(calls),
            "recommendations_only": quantiles(alone)}


if __name__ == "__main__":
    main()
