from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.urls import reverse
from django.utils import timezone

from blobs.models import Blob
from evals.models import Eval, EvalResult
from tests.tracing.factories import (
    b64,
    data_url,
    export_of,
    make_trace,
    otlp_span,
    png_bytes,
    wav_bytes,
)
from tracing.services import ingest_request

pytestmark = pytest.mark.django_db


def test_the_trace_list_requires_login(client):
    response = client.get(reverse("tracing:list"))

    assert response.status_code == HTTPStatus.FOUND
    assert "/accounts/login/" in response["Location"]


def test_the_trace_list_shows_traces_and_filters_by_eval(
    logged_in_client, django_assert_max_num_queries
):
    make_trace(name="wanted", eval_id="eval-x:1")
    make_trace(name="other", eval_id="eval-y")

    with django_assert_max_num_queries(8):
        response = logged_in_client.get(reverse("tracing:list"), {"eval": "eval-x:1"})

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "wanted" in html and "other" not in html


def test_an_invalid_filter_shows_its_error_instead_of_traces(logged_in_client):
    make_trace(name="should-not-show")

    response = logged_in_client.get(reverse("tracing:list"), {"min_duration_ms": "-5"})

    assert response.status_code == HTTPStatus.OK
    assert "should-not-show" not in response.content.decode()


def test_the_trace_page_draws_a_waterfall_with_nesting_widths_and_status(logged_in_client):
    Eval.objects.create(id="eval-w:1", created_at=timezone.now())
    trace = make_trace(name="root", eval_id="eval-w:1", children=2, duration_ms=30, status=2)

    response = logged_in_client.get(reverse("tracing:detail", args=[trace.trace_id]))

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    bars = re.findall(r'class="wf-bar status-(\w+)" style="left: ([\d.]+)%; width: ([\d.]+)%', html)
    assert bars == [
        ("error", "0.000", "100.000"),
        ("unset", "3.333", "33.333"),
        ("unset", "6.667", "33.333"),
    ]
    assert "padding-left: 1em" in html
    assert "/evals/eval-w%3A1/" in html


def test_an_unknown_trace_page_is_a_404(logged_in_client):
    response = logged_in_client.get(reverse("tracing:detail", args=["f" * 32]))

    assert response.status_code == HTTPStatus.NOT_FOUND


def test_the_trace_page_shows_span_media_inline_in_constant_queries(
    logged_in_client, django_assert_max_num_queries
):
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    spans = [
        otlp_span(trace_id, f"{n + 1:016x}", f"draw-{n}", attributes={"out.image": url})
        for n, url in enumerate(data_url(png_bytes(seed=n)) for n in range(4))
    ]
    speak = otlp_span(trace_id, f"{9:016x}", "speak", attributes={"out.audio": b64(wav_bytes())})
    event = speak.events.add(name="gen_ai.choice", time_unix_nano=speak.start_time_unix_nano)
    event.attributes.add(key="message").value.string_value = data_url(png_bytes(seed=9))
    ingest_request(request=export_of(*spans, speak))
    media = {blob.mime_type: blob for blob in Blob.objects.order_by("mime_type")}

    with django_assert_max_num_queries(6):
        response = logged_in_client.get(reverse("tracing:detail", args=[trace_id]))

    html = response.content.decode()
    assert html.count('<img src="/api/blobs/') == 5
    assert (
        f'<audio controls preload="metadata" src="/api/blobs/{media["audio/wav"].sha256}"' in html
    )


def test_the_result_drawer_links_to_the_results_trace(logged_in_client):
    evaluation = Eval.objects.create(id="eval-d:1", created_at=timezone.now())
    result = EvalResult.objects.create(eval=evaluation, test_idx=3, prompt_idx=0)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    attributes = {"evaluation.id": evaluation.id, "test.index": 3, "prompt.index": 0}
    ingest_request(request=export_of(otlp_span(trace_id, "1" * 16, "t", attributes=attributes)))

    response = logged_in_client.get(
        reverse("evals:result", args=[evaluation.id, result.pk]), {"partial": "1"}
    )

    assert response.status_code == HTTPStatus.OK
    assert f'href="{reverse("tracing:detail", args=[trace_id])}"' in response.content.decode()
