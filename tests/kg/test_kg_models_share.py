"""What every kg model shares: head queries answer the same triple as tail queries, candidates agree with
full scoring."""

from __future__ import annotations

import pytest
import torch
from family_modules import family as load_family

from fusionrec.registry import MODELS

family = load_family("kg")

EMBEDDING_MODELS = ["transe", "distmult", "complex", "rotate"]


def build(name, **config):
    torch.manual_seed(0)
    entry = MODELS.entry(name)
    model_config = entry.config(name=name, **{**family.TINY[name], **config})
    return entry.obj.from_dataset(model_config, family.tiny_dataset()).eval()


@pytest.mark.parametrize("name", EMBEDDING_MODELS)
def test_a_head_query_scores_the_same_triple_as_the_tail_query(name):
    model = build(name)
    R = model.num_relations
    h, r = torch.tensor([3, 7, 11]), torch.tensor([0, 1, 2])
    with torch.no_grad():
        tails = model.score_queries(h, r)  # (3, E): f(h, r, every t)
        for t in (0, 5, 20):
            heads = model.score_queries(torch.full((3,), t), r + R)  # f(every h, r, t)
            torch.testing.assert_close(heads[torch.arange(3), h], tails[:, t], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", [*EMBEDDING_MODELS, "mkgformer"])
def test_candidates_agree_with_scoring_every_entity(name):
    model = build(name)
    entities, relations = torch.tensor([1, 2]), torch.tensor([0, 4])
    candidates = torch.tensor([[0, 9, 9, 30], [5, 1, 59, 2]])
    with torch.no_grad():
        full = model.score_queries(entities, relations)
        torch.testing.assert_close(
            model.score_candidates(entities, relations, candidates), full.gather(1, candidates), rtol=1e-4, atol=1e-4
        )
    assert full.shape == (2, model.num_entities)


@pytest.mark.parametrize("name", EMBEDDING_MODELS)
def test_the_loss_touches_only_the_batch_rows_of_its_lookup_tables(name):
    model = build(name).train()
    _, task = family.tiny_task(name, MODELS.entry(name).config(name=name, **family.TINY[name]))
    batch = next(iter(task.train_batches(1)))
    for table in model.lookup_embeddings():
        table.sparse = True
    model.loss(batch).loss.backward()
    entity_grad = model.lookup_embeddings()[0].weight.grad
    assert entity_grad.is_sparse
    used = set(batch.entities.tolist()) | set(batch.targets.tolist()) | set(batch.negatives.flatten().tolist())
    assert set(entity_grad.coalesce().indices()[0].tolist()) <= used
