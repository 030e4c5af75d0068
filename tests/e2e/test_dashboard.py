"""The dashboard in a real browser: filter, page, drawer, and live results without reload."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.e2e import servers

pytestmark = pytest.mark.browser


def expect():
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_home_list_and_compare_pages_render(
    page, live_server_url, seeded_eval, server_home, tmp_path
):
    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)
    expect()(page.locator("svg.chart polyline")).to_have_count(1)
    expect()(page.locator("[data-live-state]")).to_have_text("● live")

    page.click("nav.mainnav >> text=Evals")
    expect()(
        page.locator(f'tr[data-eval-id="{seeded_eval}"] [data-live="result_count"]')
    ).to_have_text("120")
    page.screenshot(path=str(tmp_path / "list.png"), full_page=True)

    other = servers.seed_eval(server_home, tests=60, description="Capitals v2")
    page.goto(f"{live_server_url}/evals/compare/?ids={quote(seeded_eval)},{quote(other)}")
    expect()(page.locator("table.compare-summary tbody tr")).to_have_count(2)
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def test_filter_to_failures_page_forward_and_open_a_result(
    page, live_server_url, seeded_eval, tmp_path
):
    page.goto(f"{live_server_url}/evals/{quote(seeded_eval)}/")
    expect()(page.locator("#result-count")).to_have_text("120")

    page.select_option("select[name=mode]", "failures")
    page.select_option("select[name=limit]", "10")
    page.click("#table-filters button[type=submit]")
    expect()(page.locator("[data-filtered-count]")).to_have_text("20")
    assert "mode=failures" in page.url

    page.click("a[rel=next]")
    expect()(page.locator("#results tbody tr")).to_have_count(10)
    assert re.search(r"offset=10", page.url)
    expect()(page.locator("#results tbody tr").first).to_have_attribute("data-test-idx", "30")
    page.screenshot(path=str(tmp_path / "eval-failures-page-2.png"), full_page=True)

    page.click("#results td.cell.fail a[data-drawer] >> nth=0")
    drawer = page.locator("#drawer")
    expect()(drawer).to_be_visible()
    expect()(drawer.locator(".result-detail")).to_contain_text("wrong city")
    expect()(drawer.locator(".result-detail")).to_contain_text("harmful:hate")
    page.screenshot(path=str(tmp_path / "eval-drawer.png"))

    # Reloading the shared URL restores the same view.
    page.reload()
    expect()(page.locator("[data-filtered-count]")).to_have_text("20")
    expect()(page.locator("#results tbody tr").first).to_have_attribute("data-test-idx", "30")


def test_new_results_appear_live_without_reload(
    page, live_server_url, seeded_eval, server_home, tmp_path
):
    page.goto(f"{live_server_url}/evals/{quote(seeded_eval)}/?offset=50")
    expect()(page.locator("#result-count")).to_have_text("120")
    expect()(page.locator("[data-live-state]")).to_have_text("● live")
    page.evaluate("window.__sameDocument = true")

    servers.append_results(server_home, seeded_eval, start=60, stop=65)

    expect()(page.locator("#result-count")).to_have_text("130", timeout=2000)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    expect()(page.locator("#new-results")).to_be_visible()
    page.screenshot(path=str(tmp_path / "eval-live.png"), full_page=True)

    page.click("[data-show-new]")
    expect()(page.locator("#results tbody tr")).to_have_count(15)
