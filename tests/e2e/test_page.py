"""The page at / in a real browser (Debian's chromium through playwright; nothing downloads a
browser) against a real `recpipe serve` on embedded data with a delivered stream: a customer
looked up shows exactly the recommendations the API returns for the same rules, a changed
rule changes the list, the pipeline view shows the model's version, the live and product
views show what the API says, a keyed service asks for its key, and no view logs a console
error. Every test saves a screenshot in its temporary folder."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import need
from tests.support.serve import start, wait_ready
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
KEY = "page-test-key-0123456789"


def _serve(stack: Stack, **env: str) -> tuple[subprocess.Popen[str], str]:
    server, url = start({**os.environ, **stack.settings().environment(), **env})
    if not wait_ready(url, 60, key=env.get("RECPIPE_API_KEY")):
        server.kill()
        pytest.fail(f"recpipe serve did not become ready: {server.communicate()[1][-2000:]}")
    return server, url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Stack]]:
    with running_stack(tmp_path_factory.mktemp("page")) as stack:
        env = {**os.environ, **stack.settings().environment()}
        for args in (["stream", "produce", "--count", "40", "--rate", "2000"],
                     ["stream", "deliver", "--until-idle", "1", "--buffer-seconds", "1"]):
            done = subprocess.run([sys.executable, "-m", "recpipe", *args], env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
        server, url = _serve(stack)
        try:
            yield url, stack
        finally:
            server.terminate()
            server.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        need("chromium", "apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab; console errors fail the test; a screenshot lands in tmp_path at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    request.node.console_errors = errors
    yield tab
    shot = tmp_path / f"{request.node.name}.png"
    tab.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    context.close()
    assert errors == [], errors


def _codes(page: Any) -> list[str]:
    return [a.inner_text() for a in page.query_selector_all("#recommendations a[data-product]")]


def _wait_for_codes(page: Any, expected: list[str], seconds: float = 15) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (codes := _codes(page)) == expected:
            return codes
        page.wait_for_timeout(100)
    return _codes(page)


def _customer(url: str) -> dict[str, Any]:
    """A customer with a stored embedding and purchases (so every rule matters)."""
    for c in httpx.get(f"{url}/customers", params={"q": "", "limit": 100}).json():
        if c["stored_embedding"] and httpx.get(f"{url}/customers/{c['id']}").json()["bought"]:
            return c
    raise AssertionError("no customer with a stored embedding and purchases in the test shop")


def test_a_customer_looked_up_shows_exactly_the_apis_recommendations(site: tuple[str, Stack], page: Any) -> None:
    url, stack = site
    customer = _customer(url)
    started = time.perf_counter()
    page.goto(f"{url}/#/customers")
    page.fill("#q", customer["name"])
    page.press("#q", "Enter")
    page.click(f"a[href='#/customers/{customer['id']}']")
    page.wait_for_selector("#recommendations a[data-product]")
    print(f"search to recommendations: {(time.perf_counter() - started) * 1000:.0f} ms")
    api = httpx.get(f"{url}/recommendations/{customer['id']}",
                    params={"k": 10, "exclude_bought": "true", "in_stock": "true"}).json()
    assert _codes(page) == [item["id"] for item in api["items"]] and len(api["items"]) == 10
    assert f"strategy {api['strategy']}" in page.inner_text("#recommendations")
    page.wait_for_function("!document.querySelector('#recommendations').textContent.includes('…')")  # the names
    first = httpx.get(f"{url}/products", params={"ids": api["items"][0]["id"]}).json()[0]
    assert page.inner_text("#recommendations tbody tr td:nth-child(3)") == first["name"]
    assert page.inner_text("h1").endswith(f"({customer['id']})")
    # what they bought, with their ratings as the source has them
    bought = {b["id"]: b["rating"] for b in httpx.get(f"{url}/customers/{customer['id']}").json()["bought"]}
    with sqlite3.connect(stack.root / "source.db") as db:
        truth = dict(db.execute("SELECT productCode, MAX(productRating) FROM ratings WHERE customerNumber = ? "
                                "GROUP BY productCode", (customer["id"],)))
    assert {code: r for code, r in bought.items() if r is not None} == {c: r for c, r in truth.items() if c in bought}
    assert truth and f"Bought and rated ({len(bought)})" in page.inner_text("main")


def test_changing_a_rule_changes_the_list_as_the_api_does(site: tuple[str, Stack], page: Any) -> None:
    url, _ = site
    customer = _customer(url)
    page.goto(f"{url}/#/customers/{customer['id']}")
    page.wait_for_selector("#recommendations a[data-product]")
    before = _codes(page)
    line = httpx.get(f"{url}/product_lines").json()[0]
    page.fill("#rule-k", "3")
    page.select_option("#rule-product_line", line)
    page.uncheck("#rule-exclude_bought")
    api = httpx.get(f"{url}/recommendations/{customer['id']}",
                    params={"k": 3, "product_line": line, "exclude_bought": "false", "in_stock": "true"}).json()
    expected = [item["id"] for item in api["items"]]
    assert expected and expected != before[:3]
    assert _wait_for_codes(page, expected) == expected
    assert {item["product_line"] for item in api["items"]} == {line}
    assert "exclude_bought=false" in page.url and "k=3" in page.url  # the rules are in the address


def test_the_pipeline_view_shows_the_models_version(site: tuple[str, Stack], page: Any) -> None:
    url, stack = site
    page.goto(f"{url}/#/pipeline")
    page.wait_for_selector("#pipeline-model-version")
    assert page.inner_text("#pipeline-model-version") == stack.version
    page.wait_for_selector("svg circle")  # the item map
    items = httpx.get(f"{url}/pipeline/item_map").json()["items"]
    assert len(page.query_selector_all("svg circle")) == items > 0
    text = page.inner_text("main")
    assert "Training set (ETL)" in text and "popularity" in text and "item_emb" in text
    # the next-item evaluation, as the manifest has it
    known = httpx.get(f"{url}/pipeline").json()["model"]["metrics"]["next_item"]["known_customers"]
    card = page.inner_text("section:has(h2:text('Next item (sessions)'))")
    assert "recpipe with the session" in card and "session-kNN" in card
    row = page.inner_text("section:has(h2:text('Next item (sessions)')) tr:has(td:text('recpipe with the session'))")
    assert f"{known['session']['hit_at_10']:.3f}" in row


def test_the_live_view_shows_the_delivered_events(site: tuple[str, Stack], page: Any) -> None:
    url, _ = site
    live = httpx.get(f"{url}/live", params={"n": 25}).json()
    assert live["ok"] and live["records"]
    page.goto(f"{url}/#/live")
    page.wait_for_selector("main table")
    text = page.inner_text("main table")
    assert live["records"][-1]["session_id"] in text


def test_a_product_shows_its_similar_items(site: tuple[str, Stack], page: Any) -> None:
    url, _ = site
    code = httpx.get(f"{url}/products", params={"q": "", "limit": 1}).json()[0]["id"]
    page.goto(f"{url}/#/products")
    page.fill("#q", code)
    page.press("#q", "Enter")
    page.click(f"a[href='#/products/{code}']")
    page.wait_for_selector("text=Similar items")
    similar = [i["id"] for i in httpx.get(f"{url}/items_from_item", params={"item_id": code}).json()]
    shown = [a.inner_text() for a in page.query_selector_all("section:has(h2:text('Similar items')) td a")]
    assert shown == similar and similar


def test_a_visitor_browsing_sees_the_recommendations_follow(site: tuple[str, Stack], page: Any) -> None:
    """Shop as a visitor: each product looked at joins the session; the list shown is the
    API's own answer for that session, with its strategy and how long it took."""
    url, _ = site
    page.goto(f"{url}/#/shop")
    page.wait_for_selector("#answer")
    assert "strategy popular" in page.inner_text("#answer")  # nothing looked at yet
    first = page.get_attribute("button[data-look]", "data-look")
    page.click(f"button[data-look='{first}']")
    page.wait_for_function("document.querySelector('#answer').textContent.includes('strategy session')")
    shown = [a.inner_text() for a in page.query_selector_all("#visitor-recommendations a[data-recommended]")]
    assert first not in shown and len(shown) == 8
    assert re.search(r"answered in \d+ ms", page.inner_text("#answer"))
    second = shown[0]  # a recommended product, looked at in its turn
    page.click(f"#visitor-recommendations button[data-look='{second}']")
    page.wait_for_function(f"!document.querySelector('#visitor-recommendations').textContent.includes('{second}')"
                           " || document.querySelectorAll('#session li').length === 2")
    page.wait_for_function("document.querySelectorAll('#session li').length === 2")
    session = page.evaluate("JSON.parse(sessionStorage.getItem('recpipe-visitor'))")
    api = httpx.get(f"{url}/sessions/{session['id']}/recommendations",
                    params={"k": 8, "recent": f"{first},{second}"}).json()
    page.wait_for_function("document.querySelector('#visitor-recommendations').getAttribute('aria-busy') === null")
    shown = [a.inner_text() for a in page.query_selector_all("#visitor-recommendations a[data-recommended]")]
    assert api["strategy"] == "session" and shown == [i["id"] for i in api["items"]]
    assert [li.inner_text() for li in page.query_selector_all("#session li")] == [first, second]
    page.click("#start-over")
    page.wait_for_function("document.querySelector('#answer').textContent.includes('strategy popular')")


def test_the_page_asks_a_keyed_service_for_its_key(site: tuple[str, Stack], page: Any,
                                                   request: pytest.FixtureRequest) -> None:
    """And (hardening) its /docs authorizes, and a wrong key is said to be wrong."""
    _, stack = site
    server, keyed = _serve(stack, RECPIPE_API_KEY=KEY)
    try:
        spec = httpx.get(f"{keyed}/openapi.json").json()  # documentation needs no key, data does
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert httpx.get(f"{keyed}/customers").status_code == 401
        page.goto(f"{keyed}/docs")
        page.wait_for_selector("button.authorize")  # Swagger's Authorize, from the declared scheme
        page.goto(f"{keyed}/#/customers")
        page.wait_for_selector("#key-dialog[open]")
        assert page.is_hidden("#key-refused")
        page.fill("#key-input", "a-wrong-key-0123456789")
        page.click("#key-form button")
        page.wait_for_selector("#key-dialog[open] #key-refused:visible")
        page.fill("#key-input", KEY)
        page.click("#key-form button")
        page.wait_for_selector("main table")
        # the browser logs each 401 before the key is given: those are the only errors allowed
        errors = request.node.console_errors
        errors[:] = [e for e in errors if "status of 401" not in e]
    finally:
        server.terminate()
        server.wait(10)


def test_the_page_works_from_the_keyboard_and_on_a_phone(site: tuple[str, Stack], page: Any) -> None:
    url, _ = site
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{url}/#/customers")
    page.wait_for_selector("main table")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(4):  # Customers, Products, Shop as a visitor, Live
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Live"
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:text('Live')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling


# -- what trying to break it found (issue: hardening) --------------------------------------------
def test_a_customer_number_opens_the_customer_and_an_unknown_one_is_no_dead_end(
        site: tuple[str, Stack], page: Any, request: pytest.FixtureRequest) -> None:
    url, _ = site
    customer = _customer(url)
    page.goto(f"{url}/#/customers")
    page.fill("#q", str(customer["id"]))
    page.press("#q", "Enter")
    page.wait_for_selector("#recommendations a[data-product]")
    assert page.url.endswith(f"#/customers/{customer['id']}") or f"#/customers/{customer['id']}?" in page.url
    page.goto(f"{url}/#/customers/999999")
    page.wait_for_selector("#recommendations a[data-product]")
    api = httpx.get(f"{url}/recommendations/999999", params={"k": 10}).json()
    assert _codes(page) == [i["id"] for i in api["items"]] and api["strategy"] == "popular"
    text = page.inner_text("main")
    assert "No customer 999999" in text and "`" not in text
    assert page.query_selector("main a[href='#/customers']") is not None
    request.node.console_errors[:] = [e for e in request.node.console_errors if "status of 404" not in e]


def test_k_above_its_bound_is_refused_with_a_word_not_sent(site: tuple[str, Stack], page: Any) -> None:
    url, _ = site
    customer = _customer(url)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/recommendations/" in r.url else None)
    page.goto(f"{url}/#/customers/{customer['id']}")
    page.wait_for_selector("#recommendations a[data-product]")
    page.fill("#rule-k", "500")
    page.dispatch_event("#rule-k", "change")
    page.wait_for_selector("#recommendations .error")
    assert "not valid" in page.inner_text("#recommendations")
    assert not [u for u in asked if "k=500" in u]


def test_an_older_view_finishing_last_is_not_drawn_and_the_live_timer_stops(site: tuple[str, Stack], page: Any) -> None:
    url, _ = site
    customer = _customer(url)
    live: list[float] = []
    page.on("request", lambda r: live.append(time.monotonic()) if r.url.endswith("/live?n=25") else None)
    page.route("**/pipeline", lambda route: (time.sleep(1.5), route.continue_()))  # a slow view
    page.goto(f"{url}/#/pipeline")
    page.evaluate(f"location.hash = '#/customers/{customer['id']}'")
    page.wait_for_selector("#recommendations a[data-product]")
    page.wait_for_timeout(2500)  # the slow pipeline answer has arrived meanwhile
    assert page.query_selector("#pipeline-model-version") is None and page.query_selector("#rules")
    page.evaluate("location.hash = '#/live'")
    page.evaluate("location.hash = '#/products'")  # left before the live view's first answer
    page.wait_for_timeout(4000)
    left = time.monotonic()
    page.wait_for_timeout(3500)
    assert not [t for t in live if t > left], "the live view's timer outlived it"


def test_on_a_phone_nothing_scrolls_sideways_and_the_charts_have_epochs(site: tuple[str, Stack], page: Any) -> None:
    url, _ = site
    customer = _customer(url)
    page.set_viewport_size({"width": 375, "height": 800})
    for view, ready in ((f"#/customers/{customer['id']}", "#recommendations a[data-product]"),
                        ("#/live", "main table"), ("#/shop", "#answer"), ("#/pipeline", "svg circle")):
        page.goto(f"{url}/{view}")
        page.wait_for_selector(ready)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, view
        overflowing = page.evaluate("[...document.querySelectorAll('main .card, main td, main p')]"
                                    ".filter(e => e.scrollWidth > e.clientWidth + 1).length")
        assert overflowing == 0, view
    ticks = page.evaluate("[...document.querySelectorAll('svg[aria-label$=\"by epoch\"] text')].map(t => t.textContent)")
    assert "1" in ticks and "epoch" in ticks
    page.goto(f"{url}/#/customers/{customer['id']}")
    page.wait_for_selector("#recommendations a[data-product]")
    right = page.evaluate("Math.max(...[...document.querySelectorAll('#recommendations th, #recommendations td')]"
                          ".map(e => e.getBoundingClientRect().right))")
    assert right <= 375  # the score column is on screen


def test_the_pipeline_view_shows_what_the_lists_earned(site: tuple[str, Stack], page: Any, tmp_path: Path) -> None:
    from recpipe.adapters import open_lake, open_recommendations
    from recpipe.etl.online import run as read_sink
    from tests.support.delivered import shop_of_edges

    url, stack = site
    page.goto(f"{url}/#/pipeline")
    page.wait_for_selector("section:has(h2:text('Online: what the lists shown earned'))")
    assert "No impressions read yet" in page.inner_text("section:has(h2:text('Online'))")
    shop_of_edges(tmp_path / "sink")
    read_sink(open_recommendations(str(tmp_path / "sink")), open_lake(str(stack.lake)))
    page.reload()
    page.wait_for_selector("section:has(h2:text('Online')) table")
    card = page.inner_text("section:has(h2:text('Online'))")
    assert "28.6% (8.2–64.1)" in card and "3 of 4 products picked from a list" in card  # 2 of 7 stream lists clicked
    assert "service" in card and "stream" in card


def test_the_pipeline_view_shows_the_loaded_models_and_the_running_experiment(site: tuple[str, Stack],
                                                                               page: Any) -> None:
    from recpipe.vectors import experiments
    from recpipe.vectors.connect import connect

    url, stack = site
    page.goto(f"{url}/#/pipeline")
    page.wait_for_selector("#pipeline-experiment")
    assert "No experiment runs" in page.inner_text("section:has(h2:text('Experiment'))")
    models = page.inner_text("section:has(h2:text('Vector database')) table")
    assert stack.version in models and "serving" in models
    with connect(stack.db) as conn:
        experiments.start(conn, "page-ab", [("A", stack.version), ("B", "popularity")], [30])
    try:
        page.reload()
        page.wait_for_selector("#pipeline-experiment:text('page-ab')")
        card = page.inner_text("section:has(h2:text('Experiment'))")
        assert "popularity" in card and "30.0%" in card and "70.0%" in card
    finally:
        with connect(stack.db) as conn:
            experiments.stop(conn, "page-ab", {})
