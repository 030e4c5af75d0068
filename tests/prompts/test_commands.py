from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from prompts import services
from prompts.models import EmbeddingSpace, Prompt
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db


def test_reembed_fills_missing_embeddings_and_shows_progress():
    prompt = PromptFactory()
    Prompt.objects.filter(pk=prompt.pk).update(
        embedding=None, dimensions=None, embedding_model="", embedding_provider=""
    )
    out = StringIO()

    call_command("prompts", "reembed", stdout=out)

    prompt.refresh_from_db()
    assert (prompt.embedding_model, prompt.dimensions) == ("alchemy-hash-384", 384)
    assert "1/1" in out.getvalue()
    assert "Embedded 1 prompt with alchemy-hash-384" in out.getvalue()


def test_reembed_is_quiet_at_verbosity_zero():
    PromptFactory()
    out = StringIO()

    call_command("prompts", "reembed", verbosity=0, stdout=out)

    assert "[" not in out.getvalue()


def test_reembed_leaves_client_vectors_alone_unless_all():
    services.create_prompt(
        content="x",
        phase="solutio",
        provider="openai",
        model="m",
        vector=services.Vector(values=[1.0, 0.0], model="toy-2"),
    )

    call_command("prompts", "reembed", stdout=StringIO())
    assert Prompt.objects.get().embedding_model == "toy-2"

    version = EmbeddingSpace.objects.get(model="toy-2").version
    call_command("prompts", "reembed", "--all", stdout=StringIO())
    assert Prompt.objects.get().embedding_model == "alchemy-hash-384"
    assert EmbeddingSpace.objects.get(model="toy-2").version != version


def test_reembed_with_an_unknown_model_says_which_exist():
    with pytest.raises(CommandError, match="known embedders: alchemy-hash-384"):
        call_command("prompts", "reembed", "--model", "nope", stdout=StringIO())


def test_cleanup_rejects_a_threshold_outside_zero_to_one():
    with pytest.raises(CommandError, match="--below"):
        call_command("prompts", "cleanup", "--below", "2", stdout=StringIO())


def test_the_openapi_schema_documents_the_prompts_endpoints(api_client):
    schema = api_client.get(reverse("api:openapi-json")).json()

    paths = [p for p in schema["paths"] if p.startswith("/api/prompts")]
    assert "/api/prompts/search" in paths
    assert "/api/prompts/{prompt_id}/lineage" in paths
