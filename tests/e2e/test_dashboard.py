"""The dashboard in a real browser: every page, filter/page/drawer, live updates without
reload, reconnects, and the whole flow again with JavaScript turned off.

Screenshots of every page land in each test's tmp dir (1366×768, a laptop screen).
Tests that write to an eval seed their own, so the shared one stays as seeded.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import pytest

from tests.e2e import servers

pytestmark = pytest.mark.browser


def expect():
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def shot(page, tmp_path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=full_page)


def eval_url(base: str, eval_id: str, query: str = "") -> str:
    return f"{base}/evals/{quote(eval_id)}/{query}"


# Seed code for a second eval: tests 0 and 3 now pass, test 1 now fails.
FLIP = """
from evals.models import EvalResult
for t, p, ok in ((0, 1, True), (3, 1, True), (1, 0, False)):
    row = EvalResult.objects.get(eval=eval_, test_idx=t, prompt_idx=p)
    services.rate_result(eval=eval_, result_id=row.pk, passed=ok)
"""


@pytest.fixture(scope="module")
def extras(server_home, seeded_eval) -> dict[str, str]:
    return servers.seed_extras(server_home, seeded_eval)


def test_every_page_renders(page, live_server_url, seeded_eval, server_home, extras, tmp_path):
    page.goto(f"{live_server_url}/")
    expect()(page.locator("svg.chart a.dot").first).to_be_visible()
    expect()(page.locator("[data-live-state]")).to_have_text("● live")
    shot(page, tmp_path, "01-home")

    page.click("nav.mainnav >> text=Evals")
    expect()(
        page.locator(f'tr[data-eval-id="{seeded_eval}"] [data-live="result_count"]')
    ).to_have_text("120")
    shot(page, tmp_path, "02-evals-list")

    page.goto(eval_url(live_server_url, seeded_eval))
    expect()(page.locator("#results tbody tr")).to_have_count(25)
    expect()(page.locator(".head-actions a", has_text="Traces")).to_have_attribute(
        "href", f"/traces/?eval={quote(seeded_eval)}"
    )
    shot(page, tmp_path, "03-eval")
    # The header sticks while the table scrolls in its box.
    page.locator(".table-scroll").evaluate("box => { box.scrollTop = 400; }")
    header, box = (
        page.locator(s).bounding_box() for s in ("table.results th >> nth=0", ".table-scroll")
    )
    assert abs(header["y"] - box["y"]) <= 2

    page.goto(eval_url(live_server_url, seeded_eval, "?mode=failures&limit=10"))
    expect()(page.locator("[data-filtered-count]")).to_have_text("20")
    shot(page, tmp_path, "04-eval-failures")
    # The filter bar stays on one line down to 1280px wide, Reset and all.
    page.set_viewport_size({"width": 1280, "height": 768})
    first, last = (page.locator("#table-filters > *").nth(i).bounding_box() for i in (0, -1))
    assert last["y"] < first["y"] + first["height"]  # same line
    shot(page, tmp_path, "04b-eval-failures-1280", full_page=False)
    page.set_viewport_size({"width": 1366, "height": 768})

    page.click("#results td.cell.fail a[data-drawer] >> nth=0")
    drawer = page.locator("#drawer")
    expect()(drawer.locator(".result-detail")).to_contain_text("wrong city")
    # The drawer makes room: the last prompt column stays clickable beside it.
    column = page.locator("#results tbody tr >> nth=0").locator("td.cell").last.bounding_box()
    assert column["x"] + column["width"] <= drawer.bounding_box()["x"] + 1
    shot(page, tmp_path, "05-eval-drawer", full_page=False)

    page.click("[data-drawer-permalink]")
    expect()(page.locator(".result-detail")).to_contain_text("wrong city")
    assert "mode%3Dfailures" in page.url  # back= keeps the view
    shot(page, tmp_path, "06-result-page")

    other = servers.seed_eval(server_home, tests=60, description="Capitals v2", extra=FLIP)
    page.goto(f"{live_server_url}/evals/compare/?ids={quote(seeded_eval)},{quote(other)}")
    expect()(page.locator("table.compare-summary tbody tr")).to_have_count(2)
    expect()(page.locator("table.compare-prompt")).to_have_count(2)
    expect()(page.locator("table.flips tbody tr")).to_have_count(3)
    shot(page, tmp_path, "07-compare")
    page.goto(f"{live_server_url}/evals/compare/")
    expect()(page.locator(".compare-picker input[type=checkbox]").first).to_be_visible()
    shot(page, tmp_path, "08-compare-picker")

    page.goto(f"{live_server_url}/traces/")
    expect()(page.locator("table.data tbody tr")).to_have_count(1)
    shot(page, tmp_path, "09-traces")
    page.click("text=provider call >> nth=0")
    expect()(page.locator("h1")).to_have_text("provider call")
    shot(page, tmp_path, "10-trace")
    page.click("text=test #3, prompt #1")
    expect()(page.locator(".result-detail")).to_contain_text("test #3 · prompt #1")

    page.goto(f"{live_server_url}/prompts/")
    expect()(page.locator("table.data tbody tr")).to_have_count(2)
    shot(page, tmp_path, "11-prompts")
    page.goto(f"{live_server_url}/prompts/{extras['prompt_id']}/")
    expect()(page.locator(".lineage")).to_contain_text("Name the capital of")
    shot(page, tmp_path, "12-prompt")

    page.goto(eval_url(live_server_url, extras["maps"]))
    expect()(page.locator("#results .thumbs img")).to_have_count(3)
    expect()(page.locator("#results")).not_to_contain_text("promptfoo://blob/")
    shot(page, tmp_path, "13-eval-images")


def test_filter_to_failures_page_forward_and_open_a_result(
    page, live_server_url, seeded_eval, tmp_path
):
    page.goto(eval_url(live_server_url, seeded_eval))
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

    page.click("#results td.cell.fail a[data-drawer] >> nth=0")
    drawer = page.locator("#drawer")
    expect()(drawer).to_be_visible()
    expect()(drawer.locator(".result-detail")).to_contain_text("wrong city")
    expect()(drawer.locator(".result-detail")).to_contain_text("harmful:hate")
    expect()(drawer.locator(".result-detail")).to_contain_text("test #30 · prompt #1")
    page.click("[data-drawer-step='1']")
    expect()(drawer.locator(".result-detail")).to_contain_text("test #33 · prompt #0")
    page.keyboard.press("k")
    expect()(drawer.locator(".result-detail")).to_contain_text("test #30 · prompt #1")
    page.keyboard.press("Escape")
    expect()(drawer).to_be_hidden()

    # Reloading the shared URL restores the same view.
    page.reload()
    expect()(page.locator("[data-filtered-count]")).to_have_text("20")
    expect()(page.locator("#results tbody tr").first).to_have_attribute("data-test-idx", "30")


def test_the_drawer_says_so_when_a_result_cannot_load(page, live_server_url, seeded_eval):
    page.goto(eval_url(live_server_url, seeded_eval))
    page.route("**/results/**", lambda route: route.fulfill(status=500, body="<h1>boom</h1>"))
    page.click("#results a[data-drawer] >> nth=0")
    expect()(page.locator("#drawer-body .error")).to_have_text(
        "Could not load this result (HTTP 500)."
    )
    expect()(page.locator("#drawer-body")).not_to_contain_text("boom")


def test_new_results_on_a_page_that_is_not_full_appear_live(
    page, live_server_url, server_home, tmp_path
):
    eval_id = servers.seed_eval(server_home, tests=60, description="Live tail")
    page.goto(eval_url(live_server_url, eval_id, "?offset=50"))
    expect()(page.locator("#result-count")).to_have_text("120")
    expect()(page.locator("[data-live-state]")).to_have_text("● live")
    page.evaluate("window.__sameDocument = true")

    servers.append_results(server_home, eval_id, start=60, stop=65)

    expect()(page.locator("#result-count")).to_have_text("130", timeout=2000)
    expect()(page.locator("#results tbody tr")).to_have_count(15)
    expect()(page.locator("#new-results")).to_contain_text("5 new tests below.")
    expect()(page.locator("[data-filtered-count]")).to_have_text("65")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    shot(page, tmp_path, "eval-live-tail")

    page.click("[data-show-new]")
    expect()(page.locator("#new-results")).to_be_hidden()
    expect()(page.locator("tr.fresh")).to_have_count(5)


def test_a_full_page_keeps_its_rows_and_scroll_while_counts_and_pages_move(
    page, live_server_url, server_home, tmp_path
):
    eval_id = servers.seed_eval(server_home, tests=60, description="Live head")
    page.goto(eval_url(live_server_url, eval_id))
    expect()(page.locator("[data-live-state]")).to_have_text("● live")
    expect()(page.locator(".pagination >> nth=0")).to_contain_text("Page 1 of 3")
    page.mouse.wheel(0, 300)
    page.wait_for_function("window.scrollY > 0")
    table_top = "document.getElementById('results').getBoundingClientRect().top"
    before = page.evaluate(table_top)

    servers.append_results(server_home, eval_id, start=60, stop=80)

    expect()(page.locator("[data-filtered-count]")).to_have_text("80", timeout=2000)
    expect()(page.locator(".pagination")).to_contain_text("Page 1 of 4")
    expect()(page.locator("#new-results")).to_contain_text(
        "20 new tests in this view, on later pages."
    )
    expect()(page.locator("#results tbody tr")).to_have_count(25)
    expect()(page.locator("#results tbody tr").first).to_have_attribute("data-test-idx", "0")
    assert page.evaluate(table_top) == before  # the reader's view did not move
    shot(page, tmp_path, "eval-live-full-page")

    page.click("[data-show-new]")
    page.wait_for_url(re.compile(r"offset=75"))
    expect()(page.locator("#results tbody tr")).to_have_count(5)


def test_ratings_update_the_stats_live_and_redraw_the_rated_cell(
    page, live_server_url, server_home
):
    eval_id = servers.seed_eval(server_home, tests=30, description="Ratings")
    page.goto(eval_url(live_server_url, eval_id))
    second_prompt = page.locator("#stats .prompt-card >> nth=1")
    expect()(second_prompt.locator(".stat-line")).to_contain_text("67% passing")
    expect()(page.locator("[data-live-state]")).to_have_text("● live")

    # Elsewhere: the result count stays 60, only pass/fail move.
    servers.rate(server_home, eval_id, test_idx=0, prompt_idx=1, passed=True)
    expect()(second_prompt.locator(".stat-line")).to_contain_text("70% passing", timeout=2000)
    expect()(page.locator("#result-count")).to_have_text("60")

    # Here, in the drawer: the cell changes at once, the stats follow over the socket.
    cell = page.locator('#results tr[data-test-idx="3"] td.cell').last
    cell.locator("a[data-drawer]").click()
    expect()(page.locator("#drawer .result-detail")).to_contain_text("test #3 · prompt #1")
    page.click("#drawer button[name=pass][value='1']")
    expect()(cell).to_have_class(re.compile(r"\bpass\b"))
    expect()(cell.locator("[data-verdict]")).to_have_text("PASS")
    expect()(second_prompt.locator(".stat-line")).to_contain_text("73% passing", timeout=2000)
    expect()(page.locator("#drawer [data-verdict]")).to_have_text("PASS")


def test_the_list_announces_only_evals_newer_than_its_first_row(page, live_server_url, server_home):
    older = servers.seed_eval(server_home, tests=3, description="Banner older")

    def delivered_after(action) -> None:
        before = page.evaluate("window.__wsMessages")
        action()
        page.wait_for_function(f"window.__wsMessages > {before}")

    # Filtered: an eval missing from the rows is filtered out, not new.
    page.goto(f"{live_server_url}/evals/?search=nothing-matches")
    expect()(page.locator("[data-live-state]")).to_have_text("● live")
    delivered_after(lambda: servers.append_results(server_home, older, start=3, stop=4))
    expect()(page.locator("[data-new-evals]")).to_be_hidden()

    # Unfiltered: an update of a listed eval changes its row, no banner...
    page.goto(f"{live_server_url}/evals/")
    expect()(page.locator("[data-live-state]")).to_have_text("● live")
    delivered_after(lambda: servers.append_results(server_home, older, start=4, stop=5))
    expect()(page.locator(f'tr[data-eval-id="{older}"] [data-live="result_count"]')).to_have_text(
        "10"
    )
    expect()(page.locator("[data-new-evals]")).to_be_hidden()

    # ...and a new eval brings the banner.
    servers.seed_eval(server_home, tests=2, description="Banner newest")
    expect()(page.locator("[data-new-evals]")).to_be_visible(timeout=2000)


def test_a_dropped_socket_reconnects_without_polling(page, live_server_url, seeded_eval):
    partials: list[str] = []
    page.on("request", lambda r: partials.append(r.url) if "partial=" in r.url else None)
    page.goto(eval_url(live_server_url, seeded_eval))
    state = page.locator("[data-live-state]")
    expect()(state).to_have_text("● live")
    page.wait_for_function("window.__wsMessages >= 1")  # the greeting
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.evaluate("window.__sockets[window.__sockets.length - 1].close()")

    page.wait_for_function(
        "window.__liveStates.includes('reconnecting…') && window.__sockets.length === 2"
        " && window.__liveStates[window.__liveStates.length - 1] === '● live'"
    )
    expect()(state).to_have_text("● live")
    page.wait_for_function("window.__wsMessages >= 2")  # greeted again, same counts
    states = page.evaluate("window.__liveStates")
    assert states.index("reconnecting…") < len(states) - 1
    assert requests == []  # no HTTP request: no polling, and nothing changed to fetch
    assert partials == []  # a greeting with the counts the page shows fetches nothing


def test_without_javascript_filter_page_open_rate_and_come_back(
    page_without_js, live_server_url, server_home, tmp_path
):
    page = page_without_js
    eval_id = servers.seed_eval(server_home, tests=60, description="No JavaScript")
    page.goto(eval_url(live_server_url, eval_id))
    expect()(page.locator("[data-live-state]")).to_have_text("live updates off")

    page.select_option("select[name=mode]", "failures")
    page.select_option("select[name=limit]", "10")
    page.click("#table-filters button[type=submit]")
    expect()(page.locator("[data-filtered-count]")).to_have_text("20")

    page.click("a[rel=next]")
    expect()(page.locator("#results tbody tr").first).to_have_attribute("data-test-idx", "30")
    filtered_page = page.url
    shot(page, tmp_path, "nojs-eval-page-2")

    page.click("#results td.cell.fail a.cell-link >> nth=0")
    expect()(page.locator(".result-detail")).to_contain_text("test #30 · prompt #1")
    shot(page, tmp_path, "nojs-result")
    page.click("button[name=pass][value='1']")

    # Back on the same view (the path's colons may come back unescaped: same URL).
    page.wait_for_url(lambda url: unquote(url) == unquote(filtered_page))
    expect()(page.locator("[data-filtered-count]")).to_have_text("19")
    expect()(page.locator("select[name=mode]")).to_have_value("failures")
    expect()(page.locator(".pagination")).to_contain_text("Page 2 of 2")

    page.click("#results td.cell.fail a.cell-link >> nth=0")
    page.click("text=← " + eval_id)
    page.wait_for_url(lambda url: unquote(url) == unquote(filtered_page))
