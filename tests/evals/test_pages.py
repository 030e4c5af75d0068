"""The dashboard pages: login required, filters in the URL, constant query counts."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

import pytest
from django.urls import reverse

from evals import selectors, services
from evals.models import EvalResult
from tests.evals import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def eval_with_results():
    eval_ = factories.make_eval(prompts=2, description="Capitals", tags={"team": "geo"})
    rows = factories.grid(30, prompts=2)
    for row in rows:
        if row["testIdx"] % 3 == 0 and row["promptIdx"] == 1:
            row.update(success=False, score=0.0, failureReason=1)
            row["gradingResult"].update({"pass": False, "score": 0.0, "reason": "wrong city"})
            row["metadata"] = {"pluginId": "harmful:hate", "severity": "high"}
    services.add_results(eval=eval_, results=rows)
    return eval_


def detail_url(eval_, **params) -> str:
    from urllib.parse import urlencode

    url = reverse("evals:detail", kwargs={"eval_id": eval_.id})
    return f"{url}?{urlencode(params, doseq=True)}" if params else url


EVAL_URL = "/evals/eval-abc-2025-01-13T10:30:45/"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/"),
        ("get", "/evals/"),
        ("get", "/evals/compare/"),
        ("get", "/evals/compare/?ids=a,b"),
        ("get", EVAL_URL),
        ("get", f"{EVAL_URL}?partial=stats"),
        ("get", f"{EVAL_URL}?partial=counts"),
        ("get", f"{EVAL_URL}?partial=table"),
        ("get", f"{EVAL_URL}results/1/"),
        ("get", f"{EVAL_URL}results/1/?partial=1"),
        ("post", f"{EVAL_URL}results/1/rate/"),
        ("get", f"{EVAL_URL}delete/"),
        ("post", f"{EVAL_URL}delete/"),
        ("get", "/prompts/"),
        ("get", "/prompts/6f1c1a2e-8f7e-4d1b-9a55-0c1f2d3e4a5b/"),
        ("get", "/traces/"),
        ("get", f"/traces/{'a' * 32}/"),
    ],
)
def test_pages_redirect_anonymous_visitors_to_login(client, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_posts_change_nothing(client, eval_with_results):
    result = EvalResult.objects.get(eval_id=eval_with_results.id, test_idx=3, prompt_idx=1)
    rate = reverse("evals:rate", kwargs={"eval_id": eval_with_results.id, "result_id": result.pk})
    delete = reverse("evals:delete", kwargs={"eval_id": eval_with_results.id})

    assert client.post(rate, {"pass": "1"}).status_code == HTTPStatus.FOUND
    assert client.post(delete).status_code == HTTPStatus.FOUND

    result.refresh_from_db()
    assert not result.success
    assert EvalResult.objects.filter(eval_id=eval_with_results.id).count() == 60


def test_home_shows_recent_evals_and_a_pass_rate_chart(logged_in_client, eval_with_results):
    response = logged_in_client.get("/")
    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "Capitals" in html
    assert "<polyline" in html
    assert 'data-ws="/ws/evals/"' in html


def test_home_charts_one_line_per_value_of_the_chosen_tag(logged_in_client, eval_with_results):
    response = logged_in_client.get("/?by=team")
    assert "geo" in response.content.decode()
    assert response.context["chart"]["lines"][0]["name"] == "geo"


def test_list_shows_counts_status_and_pass_rate(logged_in_client, eval_with_results):
    response = logged_in_client.get(reverse("evals:list"))
    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert eval_with_results.id in html
    assert 'class="badge running"' in html
    item = response.context["listing"]["items"][0]
    assert (item["result_count"], item["pass_count"]) == (60, 50)


def test_only_the_unfiltered_first_list_page_announces_new_evals(logged_in_client):
    factories.make_eval(prompts=1)
    url = reverse("evals:list")
    assert "data-watch-new" in logged_in_client.get(url).content.decode()
    for params in ({"offset": 25}, {"author": "bob"}, {"status": "running"}):
        assert "data-watch-new" not in logged_in_client.get(url, params).content.decode()


def test_list_filters_by_tag_author_status_and_search(logged_in_client, eval_with_results):
    factories.make_eval(prompts=1, description="Other", author="bob")
    get = logged_in_client.get
    url = reverse("evals:list")
    assert get(url, {"tag": "team=geo"}).context["listing"]["count"] == 1
    assert get(url, {"author": "bob"}).context["listing"]["items"][0]["description"] == "Other"
    assert get(url, {"status": "complete"}).context["listing"]["count"] == 0
    assert get(url, {"search": "capit"}).context["listing"]["count"] == 1


def test_a_bad_list_filter_is_reported_not_a_server_error(logged_in_client, eval_with_results):
    response = logged_in_client.get(reverse("evals:list"), {"date": "yesterday"})
    assert response.status_code == HTTPStatus.OK
    assert "is not YYYY-MM-DD" in response.content.decode()


def test_the_list_paginates(logged_in_client):
    for index in range(27):
        factories.make_eval(prompts=1, description=f"e{index}")
    first = logged_in_client.get(reverse("evals:list"))
    second = logged_in_client.get(reverse("evals:list"), {"offset": 25})
    assert len(first.context["listing"]["items"]) == 25
    assert len(second.context["listing"]["items"]) == 2
    assert "Page 2 of 2" in second.content.decode()


def test_an_offset_past_any_page_shows_an_empty_page_not_a_server_error(
    logged_in_client, eval_with_results
):
    for url in (reverse("evals:list"), reverse("evals:detail", args=[eval_with_results.id])):
        response = logged_in_client.get(url, {"offset": 10**25, "limit": 10**25})
        assert response.status_code == HTTPStatus.OK, url


def test_the_list_page_makes_a_constant_number_of_queries(
    logged_in_client, django_assert_max_num_queries
):
    for index in range(12):
        eval_ = factories.make_eval(prompts=2, description=f"e{index}", tags={"n": str(index)})
        services.add_results(eval=eval_, results=factories.grid(3, prompts=2))
    with django_assert_max_num_queries(8):
        logged_in_client.get(reverse("evals:list"))


def test_home_makes_a_constant_number_of_queries(logged_in_client, django_assert_max_num_queries):
    for index in range(12):
        eval_ = factories.make_eval(prompts=2, description=f"e{index}", tags={"n": str(index)})
        services.add_results(eval=eval_, results=factories.grid(3, prompts=2))
    with django_assert_max_num_queries(6):
        assert logged_in_client.get("/").status_code == HTTPStatus.OK


def test_home_has_a_table_header_and_chart_dots_that_name_and_link_their_eval(
    logged_in_client, eval_with_results
):
    html = logged_in_client.get("/").content.decode()
    assert "<thead><tr><th>Eval</th>" in html
    assert f'<a href="{reverse("evals:detail", args=[eval_with_results.id])}" class="dot">' in html
    assert "<title>Capitals · 83.3% (50/60)" in html
    assert html.count("<h1>") == 1 and "<h1>Alchemy</h1>" not in html


def test_an_eval_without_results_looks_empty_not_failed(logged_in_client):
    empty = factories.make_eval(prompts=2, description="Just started")
    for url in ("/", reverse("evals:list"), detail_url(empty)):
        html = logged_in_client.get(url).content.decode()
        assert "No results yet" in html or "no results yet" in html, url
        assert "0.0%" not in html and ">0%<" not in html, url
    assert "0.000" not in logged_in_client.get(detail_url(empty)).content.decode()


def test_delete_asks_for_confirmation_then_deletes(
    logged_in_client, eval_with_results, django_assert_max_num_queries
):
    url = reverse("evals:delete", kwargs={"eval_id": eval_with_results.id})
    with django_assert_max_num_queries(3):
        assert "Delete this eval?" in logged_in_client.get(url).content.decode()
    response = logged_in_client.post(url)
    assert response.status_code == HTTPStatus.FOUND
    assert not EvalResult.objects.filter(eval_id=eval_with_results.id).exists()


def test_the_eval_page_shows_per_prompt_stats_and_the_first_page(
    logged_in_client, eval_with_results
):
    response = logged_in_client.get(detail_url(eval_with_results))
    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert [p["metrics"]["pass_count"] for p in response.context["prompts"]] == [30, 20]
    assert len(response.context["page"]["body"]) == 25
    assert "/prompts/?content_hash=" in html
    assert f"/api/evals/{quote(eval_with_results.id)}/export?format=csv" in html


def test_filter_state_lives_in_the_url(logged_in_client, eval_with_results):
    response = logged_in_client.get(
        detail_url(eval_with_results, mode="failures", limit=5, offset=5)
    )
    page = response.context["page"]
    assert page["filtered_count"] == 10
    assert [row["test_idx"] for row in page["body"]] == [15, 18, 21, 24, 27]
    html = response.content.decode()
    assert 'value="failures" selected' in html
    assert "mode=failures&amp;limit=5&amp;offset=0" in html  # "First" keeps the filters


def test_next_follows_a_keyset_cursor_and_lands_where_the_offset_would(
    logged_in_client, eval_with_results
):
    import html as html_lib
    import re

    first = logged_in_client.get(detail_url(eval_with_results, mode="failures", limit=3))
    assert [row["test_idx"] for row in first.context["page"]["body"]] == [0, 3, 6]
    links = re.findall(r'rel="next" href="([^"]+)"', first.content.decode())
    assert len(links) == 1
    next_url = html_lib.unescape(links[0])
    assert "after=6" in next_url and "offset=3" in next_url
    second = logged_in_client.get(reverse("evals:detail", args=[eval_with_results.id]) + next_url)
    by_offset = logged_in_client.get(
        detail_url(eval_with_results, mode="failures", limit=3, offset=3)
    )
    rows = [row["test_idx"] for row in second.context["page"]["body"]]
    assert rows == [row["test_idx"] for row in by_offset.context["page"]["body"]] == [9, 12, 15]
    assert second.context["window"]["number"] == 2
    # "Previous" and "First" drop the cursor, so they never land after it.
    assert "after=" not in second.context["prev_query"]


def test_search_and_metadata_filters_narrow_the_table(logged_in_client, eval_with_results):
    by_search = logged_in_client.get(detail_url(eval_with_results, search="wrong city"))
    by_plugin = logged_in_client.get(detail_url(eval_with_results, plugin="harmful:hate"))
    by_meta = logged_in_client.get(detail_url(eval_with_results, meta="severity=high"))
    assert by_search.context["page"]["filtered_count"] == 10
    assert by_plugin.context["page"]["filtered_count"] == 10
    assert by_meta.context["page"]["filtered_count"] == 10


def test_bad_json_filters_are_reported_on_the_page(logged_in_client, eval_with_results):
    response = logged_in_client.get(detail_url(eval_with_results, filters="[{nope"))
    assert response.status_code == HTTPStatus.OK
    assert "filters must be a JSON list" in response.content.decode()


def test_the_eval_page_does_no_per_row_queries(logged_in_client, django_assert_max_num_queries):
    eval_ = factories.make_eval(prompts=3)
    services.add_results(eval=eval_, results=factories.grid(200, prompts=3))
    with django_assert_max_num_queries(14):
        logged_in_client.get(detail_url(eval_, limit=200))
    with django_assert_max_num_queries(16):
        logged_in_client.get(detail_url(eval_, mode="passes", search="w1", limit=200))


def test_partials_render_only_the_stats_or_the_table(logged_in_client, eval_with_results):
    stats = logged_in_client.get(detail_url(eval_with_results, partial="stats"))
    table = logged_in_client.get(detail_url(eval_with_results, partial="table"))
    assert "<html" not in stats.content.decode()
    assert "prompt-card" in stats.content.decode()
    assert "data-test-idx" in table.content.decode()


def test_an_unknown_eval_is_404(logged_in_client):
    assert logged_in_client.get("/evals/eval-nope/").status_code == HTTPStatus.NOT_FOUND


def test_the_result_drawer_shows_output_grading_vars_and_metadata(
    logged_in_client, eval_with_results
):
    result = EvalResult.objects.get(eval_id=eval_with_results.id, test_idx=3, prompt_idx=1)
    url = reverse("evals:result", kwargs={"eval_id": eval_with_results.id, "result_id": result.pk})
    html = logged_in_client.get(url, {"partial": "1"}).content.decode()
    assert "wrong city" in html
    assert "harmful:hate" in html
    assert "w3" in html
    assert "FAIL" in html
    assert "<html" not in html


def test_manual_rating_flips_the_result_and_the_stats(logged_in_client, eval_with_results):
    result = EvalResult.objects.get(eval_id=eval_with_results.id, test_idx=3, prompt_idx=1)
    url = reverse("evals:rate", kwargs={"eval_id": eval_with_results.id, "result_id": result.pk})
    back = detail_url(eval_with_results, mode="failures")
    response = logged_in_client.post(url, {"pass": "1", "reason": "close enough", "back": back})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == back
    result.refresh_from_db()
    assert result.success
    page = logged_in_client.get(detail_url(eval_with_results))
    assert page.context["prompts"][1]["metrics"]["pass_count"] == 21


def test_rating_never_redirects_off_site(logged_in_client, eval_with_results):
    result = EvalResult.objects.filter(eval_id=eval_with_results.id).first()
    url = reverse("evals:rate", kwargs={"eval_id": eval_with_results.id, "result_id": result.pk})
    response = logged_in_client.post(url, {"pass": "0", "back": "//evil.example/evals/"})
    assert "evil" not in response["Location"]


def test_the_result_drawer_shows_images_inline_and_audio_with_a_player(logged_in_client):
    import base64

    eval_ = services.create_eval(config={}, prompts=[{"raw": "draw", "label": "p"}])
    picture = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 8).decode()
    sound = base64.b64encode(b"RIFF" + bytes(range(256)) * 8).decode()
    services.add_results(
        eval=eval_,
        results=[
            {
                "testIdx": 0,
                "promptIdx": 0,
                "success": True,
                "score": 1,
                "response": {
                    "output": f"![chart](data:image/png;base64,{picture})",
                    "audio": {"data": sound, "format": "wav"},
                },
            }
        ],
    )
    result = EvalResult.objects.get(eval=eval_)
    url = reverse("evals:result", kwargs={"eval_id": eval_.id, "result_id": result.pk})

    page = logged_in_client.get(url, {"partial": "1"}).content.decode()

    assert '<img src="/api/blobs/' in page
    assert 'src="/api/blobs/' in page.split("<audio", 1)[1]


# --- partials: each reads only what it shows ---------------------------------------------


def test_the_stats_partial_reads_the_aggregates_not_the_table(
    logged_in_client, eval_with_results, django_assert_max_num_queries
):
    with django_assert_max_num_queries(5):
        response = logged_in_client.get(detail_url(eval_with_results, partial="stats"))
    html = response.content.decode()
    assert "prompt-card" in html and "data-test-idx" not in html
    assert "in this view" not in html


def test_the_stats_partial_of_a_filtered_view_says_what_the_view_holds(
    logged_in_client, eval_with_results
):
    html = logged_in_client.get(
        detail_url(eval_with_results, mode="failures", partial="stats")
    ).content.decode()
    # Prompt 0 never fails; prompt 1 fails on 10 tests.
    assert "in this view: 0 results, 0 pass" in html
    assert "in this view: 10 results, 0 pass" in html
    assert "filtered:" not in html


def test_the_counts_partial_gives_the_filtered_count_and_pagination(
    logged_in_client, eval_with_results, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        unfiltered = logged_in_client.get(
            detail_url(eval_with_results, partial="counts", limit=10, last=9)
        ).content.decode()
    assert 'data-count="30"' in unfiltered and "Page 1 of 3" in unfiltered
    assert "offset=10&amp;after=9" in unfiltered
    assert "partial=" not in unfiltered and "last=" not in unfiltered

    filtered = logged_in_client.get(
        detail_url(eval_with_results, mode="failures", limit=5, offset=5, partial="counts")
    ).content.decode()
    assert 'data-count="10"' in filtered and "(filtered)" in filtered
    assert "Page 2 of 2" in filtered and "<tr" not in filtered


def test_partials_of_a_bad_filter_fall_back_to_the_whole_eval(logged_in_client, eval_with_results):
    counts = logged_in_client.get(
        detail_url(eval_with_results, filters="[{nope", partial="counts")
    ).content.decode()
    assert 'data-count="30"' in counts


# --- links that keep the view ---------------------------------------------------------------


def test_cell_links_carry_the_view_back_to_the_result_page(logged_in_client, eval_with_results):
    import html as html_lib
    import re

    view = detail_url(eval_with_results, mode="failures", limit=5, offset=5, after=12)
    page = logged_in_client.get(view).content.decode()
    links = re.findall(r'class="cell-link" href="([^"]+)"', page)
    assert links
    result_url = html_lib.unescape(links[0])
    from urllib.parse import parse_qs, urlsplit

    assert parse_qs(urlsplit(result_url).query)["back"] == [view]

    result_page = logged_in_client.get(result_url).content.decode()
    assert f'href="{html_lib.escape(view)}"' in result_page  # the ← link
    assert f'name="back" value="{html_lib.escape(view)}"' in result_page  # after rating

    table = logged_in_client.get(view + "&partial=table").content.decode()
    assert "partial%3Dtable" not in table and "partial=table" not in table


def test_rating_from_the_result_page_returns_to_the_same_filtered_page(
    logged_in_client, eval_with_results
):
    view = detail_url(eval_with_results, mode="failures", limit=5, offset=5, after=12)
    result = EvalResult.objects.get(eval_id=eval_with_results.id, test_idx=15, prompt_idx=1)
    rate = reverse("evals:rate", kwargs={"eval_id": eval_with_results.id, "result_id": result.pk})

    response = logged_in_client.post(rate, {"pass": "1", "back": view})

    assert response.status_code == HTTPStatus.FOUND and response["Location"] == view
    assert logged_in_client.get(view).context["page"]["filtered_count"] == 9


def test_rating_answers_json_with_what_the_cell_shows(logged_in_client, eval_with_results):
    result = EvalResult.objects.get(eval_id=eval_with_results.id, test_idx=3, prompt_idx=1)
    rate = reverse("evals:rate", kwargs={"eval_id": eval_with_results.id, "result_id": result.pk})
    response = logged_in_client.post(rate, {"pass": "1"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"id": result.pk, "pass": True, "score": 1.0}


def test_the_eval_page_links_to_its_traces(logged_in_client, eval_with_results):
    html = logged_in_client.get(detail_url(eval_with_results)).content.decode()
    traces = f"{reverse('tracing:list')}?eval={quote(eval_with_results.id)}"
    assert f'href="{traces}">Traces</a>' in html
    listing = logged_in_client.get(reverse("tracing:list"), {"eval": eval_with_results.id})
    assert listing.status_code == HTTPStatus.OK


def test_a_trace_links_to_its_result_page(logged_in_client, eval_with_results):
    from tests.tracing.factories import export_of, otlp_span
    from tracing.services import ingest_request

    result = EvalResult.objects.get(eval_id=eval_with_results.id, test_idx=3, prompt_idx=1)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    attributes = {"evaluation.id": eval_with_results.id, "test.index": 3, "prompt.index": 1}
    ingest_request(request=export_of(otlp_span(trace_id, "1" * 16, "t", attributes=attributes)))

    html = logged_in_client.get(reverse("tracing:detail", args=[trace_id])).content.decode()

    result_url = reverse("evals:result", args=[eval_with_results.id, result.pk])
    assert f'<a href="{result_url}">test #3, prompt #1</a>' in html
    assert "?test=" not in html
    assert logged_in_client.get(result_url).status_code == HTTPStatus.OK


def test_the_result_page_makes_a_constant_number_of_queries(
    logged_in_client, eval_with_results, django_assert_max_num_queries
):
    result = EvalResult.objects.get(eval_id=eval_with_results.id, test_idx=3, prompt_idx=1)
    url = reverse("evals:result", kwargs={"eval_id": eval_with_results.id, "result_id": result.pk})
    for params in ({}, {"partial": "1"}):
        with django_assert_max_num_queries(5):
            assert logged_in_client.get(url, params).status_code == HTTPStatus.OK


def test_image_outputs_show_a_thumbnail_not_the_blob_uri(logged_in_client):
    import base64

    eval_ = services.create_eval(config={}, prompts=[{"raw": "draw", "label": "p"}])
    picture = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 8).decode()
    services.add_results(
        eval=eval_,
        results=[
            {
                "testIdx": t,
                "promptIdx": 0,
                "success": True,
                "score": 1,
                "response": {"output": f"Here: ![map](data:image/png;base64,{picture}) done"},
            }
            for t in range(2)
        ],
    )
    html = logged_in_client.get(detail_url(eval_)).content.decode()
    assert "promptfoo://blob/" not in html
    assert html.count('<div class="thumbs">') == 2
    assert '<img src="/api/blobs/' in html
    assert "Here:  done" in html


# --- compare -------------------------------------------------------------------------------


def compare_url(*evals, **params) -> str:
    from urllib.parse import urlencode

    return (
        f"{reverse('evals:compare')}?{urlencode({'ids': ','.join(e.id for e in evals), **params})}"
    )


def test_compare_shows_deltas_and_flipped_tests(logged_in_client):
    before = factories.make_eval(prompts=1, description="before")
    after = factories.make_eval(prompts=1, description="after")
    services.add_results(eval=before, results=factories.grid(4, prompts=1))
    services.add_results(
        eval=after,
        results=[factories.result(t, 0, success=t != 2) for t in range(4)],
    )
    response = logged_in_client.get(compare_url(before, after))
    assert response.status_code == HTTPStatus.OK
    assert [row["test_idx"] for row in response.context["flip_rows"]] == [2]
    assert response.context["result"]["evals"][1]["pass_rate_delta"] == -25.0
    pass_rate = response.context["prompt_tables"][0]["rows"][0]
    assert pass_rate["label"] == "Pass rate"
    assert pass_rate["cells"][1] == {"text": "75.0%", "delta": "-25.0 pts", "trend": "down"}
    assert "now failing" in response.content.decode()


def test_compare_gives_per_prompt_deltas_for_every_metric_and_named_score(logged_in_client):
    before = factories.make_eval(prompts=2, description="before")
    after = factories.make_eval(prompts=2, description="after")
    services.add_results(
        eval=before,
        results=factories.grid(
            4, latency_ms=100, cost=0.01, named_scores={"accuracy": 0.5}, tokens={"total": 10}
        ),
    )
    services.add_results(
        eval=after,
        results=factories.grid(
            4, latency_ms=80, cost=0.02, named_scores={"accuracy": 0.75}, tokens={"total": 12}
        ),
    )
    tables = logged_in_client.get(compare_url(before, after)).context["prompt_tables"]
    assert len(tables) == 2
    rows = {row["label"]: row["cells"][1] for row in tables[1]["rows"]}
    assert rows["Latency (avg)"] == {"text": "80 ms", "delta": "-20 ms", "trend": "up"}
    assert rows["Cost (total)"] == {"text": "$0.0800", "delta": "+$0.0400", "trend": "down"}
    assert rows["Tokens (total)"] == {"text": "48", "delta": "+8", "trend": "down"}
    assert rows["Score (avg)"] == {"text": "1.000", "delta": "±0", "trend": ""}
    assert rows["accuracy"] == {"text": "0.750", "delta": "+0.250", "trend": "up"}
    assert all(head["same_text"] for head in tables[0]["heads"])


def test_compare_says_how_prompts_are_matched_and_marks_a_different_text(logged_in_client):
    before = factories.make_eval(prompts=1)
    after = services.create_eval(config={}, prompts=[factories.prompt("Something else")])
    services.add_results(eval=before, results=factories.grid(2, prompts=1))
    services.add_results(eval=after, results=factories.grid(2, prompts=1))
    response = logged_in_client.get(compare_url(before, after))
    html = response.content.decode()
    assert "Prompts are matched by position" in html
    assert "different text" in html
    assert response.context["prompt_tables"][0]["heads"][1]["same_text"] is False


def test_flipped_tests_show_vars_outputs_and_links_to_each_result(logged_in_client):
    before = factories.make_eval(prompts=1, description="before")
    after = factories.make_eval(prompts=1, description="after")
    services.add_results(eval=before, results=factories.grid(3, prompts=1, output="Paris"))
    services.add_results(
        eval=after,
        results=[factories.result(t, 0, success=t != 1, output=f"out-{t}") for t in range(3)],
    )
    response = logged_in_client.get(compare_url(before, after))
    (row,) = response.context["flip_rows"]
    assert row["vars"] == {"word": "w1"}
    base, other = row["columns"]
    assert (base["kind"], other["kind"]) == ("", "fail")
    assert [c["text"] for c in base["cells"]] == ["Paris"]
    assert [c["text"] for c in other["cells"]] == ["out-1"]
    before_id = EvalResult.objects.get(eval=before, test_idx=1).pk
    after_id = EvalResult.objects.get(eval=after, test_idx=1).pk
    html = response.content.decode()
    assert reverse("evals:result", args=[before.id, before_id]) + "?back=" in html
    assert reverse("evals:result", args=[after.id, after_id]) + "?back=" in html
    assert "w1" in html and "out-1" in html


def test_compare_queries_do_not_grow_with_the_flipped_rows(
    logged_in_client, django_assert_max_num_queries
):
    def flipping(tests: int):
        before = factories.make_eval(prompts=2)
        after = factories.make_eval(prompts=2)
        services.add_results(eval=before, results=factories.grid(tests, prompts=2))
        services.add_results(eval=after, results=factories.grid(tests, prompts=2, success=False))
        return before, after

    few, many = flipping(2), flipping(60)
    for pair in (few, many):
        # 13, and for each (running) eval a look for its snapshot (evals.outcomes).
        with django_assert_max_num_queries(15):
            response = logged_in_client.get(compare_url(*pair))
        assert response.context["result"]["comparisons"][0]["newly_failing"] in (2, 60)
    assert len(response.context["flip_rows"]) == 60


def test_compare_batches_the_stats_of_every_eval(logged_in_client):
    evals = [factories.make_eval(prompts=2) for _ in range(3)]
    for position, eval_ in enumerate(evals):
        results = factories.grid(3, prompts=2, success=position == 0)
        services.add_results(eval=eval_, results=results)
    selectors._OUTCOMES.clear()
    two = len(_queries(logged_in_client, compare_url(*evals[:2])))
    selectors._OUTCOMES.clear()
    three = len(_queries(logged_in_client, compare_url(*evals)))
    # One more eval costs a look for its snapshot, its one pass over results (running
    # evals have no snapshot) and its one fetch of flipped rows.
    assert three - two == 3
    # Again: each eval's pass over its results is remembered until the eval changes.
    assert len(_queries(logged_in_client, compare_url(*evals))) == three - 6


def _queries(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == HTTPStatus.OK
    return captured.captured_queries


def test_compare_refuses_more_than_six_evals_with_a_clear_message(logged_in_client):
    evals = [factories.make_eval(prompts=1) for _ in range(7)]
    response = logged_in_client.get(compare_url(*evals))
    assert response.status_code == HTTPStatus.OK
    assert "Compare at most 6 evals at a time (7 were given)." in response.content.decode()
    assert response.context["result"] is None


def test_a_first_visit_to_compare_shows_a_picker_not_an_error(logged_in_client, eval_with_results):
    other = factories.make_eval(prompts=1, description="Other")
    response = logged_in_client.get(reverse("evals:compare"))
    html = response.content.decode()
    assert 'class="error"' not in html
    assert f'<input type="checkbox" name="id" value="{eval_with_results.id}"' in html
    assert f'<input type="radio" name="base" value="{other.id}"' in html

    one = logged_in_client.get(reverse("evals:compare"), {"ids": eval_with_results.id})
    assert 'class="error"' not in one.content.decode()
    assert "at least two" in one.content.decode()
    assert (
        f'value="{eval_with_results.id}" aria-label="Compare {eval_with_results.id}" checked'
        in (one.content.decode())
    )


def test_the_picker_compares_the_ticked_evals_against_the_marked_base(logged_in_client):
    a, b, c = (factories.make_eval(prompts=1, description=d) for d in "abc")
    response = logged_in_client.get(
        reverse("evals:compare"), {"id": [a.id, b.id, c.id], "base": c.id}
    )
    assert [e["eval_id"] for e in response.context["result"]["evals"]] == [c.id, a.id, b.id]
