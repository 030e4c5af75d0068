from __future__ import annotations

import pytest

from alchemy_site.errors import Invalid
from prompts import services
from prompts.models import EmbeddingSpace, Prompt, Tag
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db


def item(n: int, **extra) -> dict:
    return {"content": f"prompt {n}", "phase": "solutio", "provider": "openai", "model": "m",
            **extra}  # fmt: skip


def test_a_batch_costs_a_few_queries_not_several_per_prompt(django_assert_max_num_queries):
    parent = PromptFactory()
    space_vector = services.Vector([1.0, 0.0, 0.0], "client-3d")
    services.create_prompts(items=[item(0, vector=space_vector)])  # the space exists now

    items = [
        item(n, tags=["bench", f"t{n % 3}"], parent_id=str(parent.pk),
             vector=services.Vector([float(n), 1.0, 2.0], "client-3d"))
        for n in range(200)
    ]  # fmt: skip
    # Parents, spaces and tags once; the INSERT in chunks of SQLite's 999 parameters.
    with django_assert_max_num_queries(20):
        created = services.create_prompts(items=items)

    assert len(created) == 200
    parent.refresh_from_db()
    assert parent.generation_count == 200
    assert Prompt.objects.filter(parent=parent).count() == 200
    assert set(Tag.objects.values_list("name", flat=True)) == {"bench", "t0", "t1", "t2"}
    assert Prompt.objects.filter(tags__name="t1").count() == len(range(1, 200, 3))
    assert Prompt.objects.filter(embedding_model="client-3d").count() == 201
    assert EmbeddingSpace.objects.get(model="client-3d").dimensions == 3


def test_prompts_without_a_vector_are_embedded_locally_like_one_created_alone():
    alone = services.create_prompt(**item(1))
    [batched] = services.create_prompts(items=[item(1)])
    assert batched.embedding_model == alone.embedding_model
    assert bytes(batched.embedding) == bytes(alone.embedding)
    assert batched.dimensions == alone.dimensions


def test_two_items_disagreeing_on_a_new_spaces_dimensions_name_the_second():
    items = [item(0, vector=services.Vector([1.0, 2.0], "new-space")),
             item(1, vector=services.Vector([1.0, 2.0, 3.0], "new-space"))]  # fmt: skip
    with pytest.raises(Invalid) as caught:
        services.create_prompts(items=items)
    assert caught.value.message.startswith("item 1: Embedding model 'new-space' has 2")
    assert not Prompt.objects.exists()
    assert not EmbeddingSpace.objects.filter(model="new-space").exists()


def test_a_vector_of_the_wrong_size_for_a_known_space_names_its_item():
    services.create_prompts(items=[item(0, vector=services.Vector([1.0, 2.0], "known"))])
    with pytest.raises(Invalid) as caught:
        services.create_prompts(
            items=[
                item(1, vector=services.Vector([1.0, 2.0], "known")),
                item(2, vector=services.Vector([1.0], "known")),
            ]  # fmt: skip
        )
    assert caught.value.message.startswith("item 1: Embedding model 'known' has 2 dimensions")
    assert Prompt.objects.count() == 1


@pytest.mark.parametrize("bad", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", 7])
def test_a_parent_that_does_not_exist_names_the_item_and_stores_nothing(bad):
    with pytest.raises(Invalid) as caught:
        services.create_prompts(items=[item(0), item(1, variant_of_id=bad)])
    assert caught.value.message == f"item 1: variant_of {bad} does not exist."
    assert not Prompt.objects.exists()


def test_one_prompt_alone_reports_its_error_without_an_item_number():
    with pytest.raises(Invalid) as caught:
        services.create_prompt(**item(0, parent_id="not-a-uuid"))
    assert caught.value.message == "parent not-a-uuid does not exist."


@pytest.mark.parametrize("bad", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_update_to_a_parent_that_does_not_exist_is_refused_by_name(bad):
    prompt = PromptFactory()
    with pytest.raises(Invalid) as caught:
        services.update_prompt(prompt=prompt, parent_id=bad)
    assert caught.value.message == f"parent {bad} does not exist."
