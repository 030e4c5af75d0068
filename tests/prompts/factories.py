from __future__ import annotations

import factory
from django.utils import timezone

from prompts import services
from prompts.models import Prompt


class PromptFactory(factory.django.DjangoModelFactory):
    """Builds prompts through the service, so hash, embedding and tags are real."""

    class Meta:
        model = Prompt

    content = factory.Sequence(lambda n: f"Prompt number {n}: explain recursion to a child.")
    phase = "prima-materia"
    provider = "openai"
    model = "gpt-4o-mini"
    persona = "generic"
    tags: list[str] = []

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        parent = kwargs.pop("parent", None)
        if parent is not None:
            kwargs["parent_id"] = parent.pk
        variant_of = kwargs.pop("variant_of", None)
        if variant_of is not None:
            kwargs["variant_of_id"] = variant_of.pk
        kwargs.setdefault("now", timezone.now())
        return services.create_prompt(**kwargs)
