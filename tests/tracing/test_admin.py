from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from tests.tracing.factories import make_trace

pytestmark = pytest.mark.django_db


def test_the_admin_lists_and_shows_traces_and_spans(client, staff_user):
    client.force_login(staff_user)
    trace = make_trace(name="in-admin")
    span = trace.spans.first()

    pages = [
        reverse("admin:tracing_trace_changelist"),
        reverse("admin:tracing_trace_change", args=[trace.pk]),
        reverse("admin:tracing_span_changelist"),
        reverse("admin:tracing_span_change", args=[span.pk]),
    ]

    for page in pages:
        assert client.get(page).status_code == HTTPStatus.OK, page
