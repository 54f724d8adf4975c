"""The web UI in a real headless browser: ``lpm ui`` serving a seeded SQLite store.

Chromium (Debian's) is driven by Playwright; every step leaves a screenshot in
``test-artifacts/ui/``. The store is checked directly afterwards, so an edit or delete that
only *looked* done in the page fails the test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from langchain_persistent_memory import ANY_USER, MemoryNotFoundError, MemoryStore
from tests.support.browser import CHROMIUM_ARGS, free_port, require_chromium, running_server
from tests.support.embeddings import HashEmbeddings

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "ui"
HASH = "tests.support.embeddings:HashEmbeddings"
# Stored text that would become an image, links and formatting if passed to Markdown raw.
HOSTILE = ("look ![pixel](http://127.0.0.1:9/track.png) [click me](http://evil.example/a) "
           "https://evil.example/b www.evil.example mal@evil.example **loud** :red[alarm] "
           "$x^2$ done")


def seed(url: str, index: Path) -> dict[str, str]:
    """Two users; alice's memories span three days and one fact was superseded."""
    now = [datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)]
    with MemoryStore(url, embeddings=HashEmbeddings(), index_path=index,
                     clock=lambda: now[0]) as store:
        porto = store.add("Alice lives in Porto", user_id="alice", category="location")
        coffee = store.add("Alice drinks espresso every morning", user_id="alice",
                           category="preference", importance=0.8)
        now[0] += timedelta(days=1)
        job = store.add("Alice works at Acme", user_id="alice", category="work")
        now[0] += timedelta(days=1)
        lisbon = store.supersede(porto.id, "Alice lives in Lisbon", user_id="alice")
        store.add("Bob plays chess", user_id="bob", category="hobby")
        store.add(HOSTILE, user_id="mallory", category="[cat](http://evil.example/c)")
    return {"porto": porto.id, "coffee": coffee.id, "job": job.id, "lisbon": lisbon.id}


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    require_chromium()
    db_url = f"sqlite:///{tmp_path / 'ui.db'}"
    ids = seed(db_url, tmp_path / "ui.db.index")
    port = free_port()
    env = {**os.environ, "LPM_EMBEDDINGS": HASH, "PYTHONPATH": str(ROOT),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "HF_HUB_OFFLINE": "1"}
    lpm = str(Path(sys.executable).with_name("lpm"))
    with running_server([lpm, "--db", db_url, "ui", "--port", str(port)], env=env,
                        health_url=f"http://127.0.0.1:{port}/_stcore/health",
                        log=tmp_path / "streamlit.log"):
        yield f"http://127.0.0.1:{port}", db_url, ids


def test_browse_search_edit_delete_and_chart(app_url: tuple[str, str, dict[str, str]],
                                            tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, db_url, ids = app_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)

        def metric(label: str):
            return page.locator('[data-testid="stMetric"]', has_text=label) \
                .locator('[data-testid="stMetricValue"]')

        def shot(name: str) -> None:
            page.wait_for_timeout(300)
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        def pick(label: str, option: str) -> None:
            page.get_by_role("combobox", name=label, exact=True).click()
            page.get_by_role("option", name=option).click()

        # --- overview of the first user
        page.goto(url)
        expect(metric("Current memories")).to_have_text("3")
        expect(metric("Superseded")).to_have_text("1")  # counted while not shown
        expect(page.get_by_text("HashEmbeddings:hash-bow")).to_be_visible()
        table = page.locator('[data-testid="stDataFrame"]').first  # the Entities tab has one
        expect(table).to_be_visible()
        # The grid is drawn on a canvas; its accessible twin holds the text of the columns
        # in view. At 1400 px the id is in view; a wider window shows every column.
        headers = table.locator('th[role="columnheader"]')
        expect(headers.nth(4)).to_have_text("id")
        page.set_viewport_size({"width": 2400, "height": 1000})
        expect(headers).to_have_count(9)
        assert [h.strip() for h in headers.all_text_contents()] == [
            "content", "category", "importance", "status", "id", "valid from", "valid to",
            "created", "updated"]
        rows = table.locator('tbody tr[role="row"]')
        expect(rows).to_have_count(3)
        cells = [[c.strip() for c in row.locator("td").all_text_contents()]
                 for row in rows.all()]
        assert {row[4] for row in cells} == {ids["job"], ids["coffee"], ids["lisbon"]}
        assert all(row[6] == "" for row in cells), cells  # valid to: empty, not "None"
        page.set_viewport_size({"width": 1400, "height": 1000})
        shot("01-memories")

        # --- another user, then superseded memories included
        pick("User", "bob")
        expect(metric("Current memories")).to_have_text("1")
        pick("User", "alice")
        expect(metric("Current memories")).to_have_text("3")
        page.get_by_text("Show superseded memories").click()
        expect(metric("Superseded")).to_have_text("1")
        expect(metric("Current memories")).to_have_text("3")

        # --- semantic search
        page.get_by_role("tab", name="Search").click()
        box = page.get_by_label("Search memories")
        box.fill("espresso every morning")
        box.press("Enter")
        first = page.locator('[data-testid="stMarkdownContainer"]', has_text="· Alice").first
        expect(first).to_contain_text("Alice drinks espresso every morning")
        shot("02-search")
        # A hit links to its details: the tab switches and shows that memory.
        page.get_by_role("button", name="Details").first.click()
        expect(page.get_by_role("tab", name="Details & history")) \
            .to_have_attribute("aria-selected", "true")
        expect(page.locator("blockquote", has_text="Alice drinks espresso")).to_be_visible()

        # --- history timeline of a superseded fact
        page.get_by_role("tab", name="Details & history").click()
        pick("Memory", "Alice lives in Porto (superseded)")
        history = page.get_by_text("superseded “Alice lives in Porto” → “Alice lives in Lisbon”")
        expect(history).to_be_visible()
        shot("03-history-superseded")
        # The superseding memory's history points back to the fact it replaced.
        pick("Memory", "Alice lives in Lisbon")
        back = page.get_by_role("button", name="replaces: Alice lives in Porto (superseded)")
        expect(back).to_be_visible()
        back.click()
        expect(page.locator("blockquote", has_text="Alice lives in Porto")).to_be_visible()
        expect(page.get_by_role("button", name="replaced by: Alice lives in Lisbon")) \
            .to_be_visible()

        # --- edit in place
        pick("Memory", "Alice works at Acme")
        expect(page.locator("blockquote", has_text="Alice works at Acme")).to_be_visible()
        content = page.get_by_role("textbox", name="Content", exact=True)
        expect(content).to_have_value("Alice works at Acme")  # the form of this memory
        content.fill("Alice works at Initech")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_text("Saved.")).to_be_visible()
        expect(page.get_by_text("updated “Alice works at Acme” → “Alice works at Initech”")) \
            .to_be_visible()
        shot("04-edited")

        # --- delete (needs the confirmation box)
        pick("Memory", "Alice drinks espresso every morning")
        expect(page.locator("blockquote", has_text="Alice drinks espresso")).to_be_visible()
        page.get_by_role("button", name="Delete memory").click()
        expect(page.get_by_text("Tick the box to confirm.")).to_be_visible()
        page.get_by_text("Yes, delete this memory").filter(visible=True).click()
        page.get_by_role("button", name="Delete memory").click()
        expect(page.get_by_text("Deleted.")).to_be_visible()
        expect(metric("Current memories")).to_have_text("2")
        picker = page.get_by_role("combobox", name="Memory", exact=True)
        expect(picker).not_to_have_value("Alice drinks espresso every morning")
        shown = picker.input_value()
        expect(page.locator("blockquote", has_text=shown.removesuffix(" (superseded)"))) \
            .to_be_visible()
        shot("05-deleted")

        # --- entities: the picked one lists the memories naming it
        page.get_by_role("tab", name="Entities").click()
        shot("05b-entities")
        picker = page.get_by_role("combobox", name="Entity", exact=True)
        expect(picker).to_have_value("Initech (1)")  # the edited fact's employer
        expect(page.get_by_text("Alice works at Initech").filter(visible=True)).to_have_count(1)

        # --- charts
        page.get_by_role("tab", name="Charts").click()
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        expect(charts).to_have_count(2)
        expect(charts.first.locator("canvas, svg").first).to_be_visible()
        shot("06-charts")

        # --- stored Markdown is shown as typed: no image, link or formatting from it
        pick("User", "mallory")
        page.get_by_role("tab", name="Details & history").click()
        quote = page.locator("blockquote", has_text="look")
        expect(quote).to_contain_text("![pixel](http")
        # Shown exactly as stored (bar the invisible joiners that stop bare-URL links).
        assert quote.inner_text().replace("\u2060", "").strip() == HOSTILE
        page.get_by_role("tab", name="Search").click()
        box = page.get_by_label("Search memories")
        box.fill("click me pixel")
        box.press("Enter")
        hit = page.locator('[data-testid="stMarkdownContainer"]', has_text="0.") \
            .filter(has_text="[click me](http").filter(visible=True)
        expect(hit).to_have_count(1)
        assert HOSTILE in hit.inner_text().replace("\u2060", "")
        main = page.locator('[data-testid="stMain"]')
        expect(main.locator('a[href*="evil"], img[src*="track"], strong:has-text("loud")')) \
            .to_have_count(0)  # hidden tab panels included
        assert "[cat](http://evil.example/c)" in hit.inner_text().replace("\u2060", "")
        shot("07-markdown-escaped")
        browser.close()

    with MemoryStore(db_url, embeddings=HashEmbeddings(),
                     index_path=tmp_path / "verify.index") as store:
        job = store.get(ids["job"], user_id=ANY_USER)
        assert job.content == "Alice works at Initech"
        assert [e.event.value for e in store.history(ids["job"],
                user_id=ANY_USER)] == ["ADD", "UPDATE"]
        with pytest.raises(MemoryNotFoundError):
            store.get(ids["coffee"], user_id=ANY_USER)
        assert store.history(ids["coffee"], user_id=ANY_USER)[-1].event.value == "DELETE"
        assert store.count("alice") == 2 and store.count("bob") == 1
