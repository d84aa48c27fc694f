"""SASRec: causal attention, padding invariance, scores from the last slot, losses, it learns."""

from __future__ import annotations

import pytest
import torch

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.models.sequential.sasrec import SASRec
from fusionrec.nn.losses import item_prediction_loss, linear_cross_entropy

I = 20


def make_batch(seqs, pad_to=None, targets=None, negatives=None):
    """Left-padded batch of item sequences (positions = distance from the end)."""
    L = pad_to or max(len(s) for s in seqs)
    items = torch.full((len(seqs), L), PAD_ITEM)
    for r, s in enumerate(seqs):
        items[r, L - len(s) :] = torch.tensor(s)
    positions = torch.where(items != PAD_ITEM, L - 1 - torch.arange(L), -1)
    return SequenceBatch(torch.arange(len(seqs)), items, positions, targets, negatives)


def model(**kw):
    torch.manual_seed(0)
    return SASRec(I, hidden_dim=16, num_layers=2, num_heads=2, max_length=10, **kw).eval()


def test_output_at_t_does_not_depend_on_items_after_t():
    net = model()
    a = make_batch([[1, 2, 3, 4, 5, 6]])
    b = make_batch([[1, 2, 3, 9, 8, 7]])  # differs from slot 3 on
    ha, hb = net.encode(a)[0], net.encode(b)[0]
    torch.testing.assert_close(ha[:, :3], hb[:, :3])
    assert not torch.allclose(ha[:, 3:], hb[:, 3:])
    attention = net.explain(a)["attention"]  # (layers, B, H, L, L)
    assert attention.shape == (2, 1, 2, 6, 6)
    assert torch.all(attention.triu(1) == 0)  # no weight on later slots


def test_padding_does_not_change_the_scores():
    net = model()
    short = net.score(make_batch([[4, 5, 6], [7, 8, 9, 10, 11]]))
    padded = net.score(make_batch([[4, 5, 6], [7, 8, 9, 10, 11]], pad_to=9))
    torch.testing.assert_close(short, padded)


def test_score_is_the_last_slot_against_item_embeddings_and_candidates_agree():
    net = model()
    batch = make_batch([[1, 2, 3], [5, 6]])
    hidden = net.encode(batch)[0][:, -1]
    torch.testing.assert_close(net.score(batch), hidden @ net.item_embedding.weight[:I].T)
    cand = torch.tensor([3, 0, 7])
    sub = net.score(SequenceBatch(batch.users, batch.items, batch.positions, candidates=cand))
    torch.testing.assert_close(sub, net.score(batch)[:, cand])


@pytest.mark.parametrize("loss", ["ce", "bce", "bpr", "sampled_ce"])
def test_every_loss_is_finite_and_trains(loss):
    net = model(loss=loss).train()
    items = torch.tensor([[1, 2, 3, 4], [PAD_ITEM, 5, 6, 7]])
    targets = torch.tensor([[2, 3, 4, 5], [PAD_ITEM, 6, 7, 8]])
    negatives = torch.randint(10, I, (2, 4, 3))
    batch = make_batch([[1, 2, 3, 4], [5, 6, 7]], targets=targets, negatives=negatives)
    assert torch.equal(batch.items, items)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    before = float(net.loss(batch).loss.detach())
    for _ in range(10):
        opt.zero_grad()
        net.loss(batch).loss.backward()
        opt.step()
    assert float(net.loss(batch).loss.detach()) < before


def test_linear_cross_entropy_matches_the_plain_form():
    torch.manual_seed(1)
    h = torch.randn(37, 8, requires_grad=True)
    w = torch.randn(23, 8, requires_grad=True)
    b = torch.randn(23, requires_grad=True)
    t = torch.randint(0, 23, (37,))
    plain = torch.nn.functional.cross_entropy(h @ w.T + b, t)
    fused = linear_cross_entropy(h, w, t, b, chunk_size=5)
    torch.testing.assert_close(fused, plain)
    for x, y in zip(torch.autograd.grad(fused, (h, w, b)), torch.autograd.grad(plain, (h, w, b))):
        torch.testing.assert_close(x, y)
    torch.testing.assert_close(item_prediction_loss(h, w, t, kind="ce"), torch.nn.functional.cross_entropy(h @ w.T, t))


def test_learns_a_deterministic_successor_pattern():
    """Every sequence walks the catalogue: next = item + 1 (mod I). SASRec must find it."""
    torch.manual_seed(0)
    starts = torch.randint(0, I, (64,))
    seqs = (starts[:, None] + torch.arange(9)) % I  # (64, 9)
    batch = make_batch(seqs[:, :-1].tolist(), targets=seqs[:, 1:])
    net = SASRec(I, hidden_dim=16, num_layers=1, max_length=10, dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        net.loss(batch).loss.backward()
        opt.step()
    net.eval()
    test = make_batch(((starts[:, None] + torch.arange(3, 8)) % I).tolist())
    hits = net.score(test).argmax(1) == (starts + 8) % I
    assert hits.float().mean() > 0.9


@pytest.mark.parametrize("kind", ["bce", "bpr", "sampled_ce"])
def test_shared_negatives_equal_per_target_negatives_without_the_targets_own_item(kind):
    torch.manual_seed(1)
    h, w, bias = torch.randn(6, 4), torch.randn(I, 4), torch.randn(I)
    targets = torch.tensor([0, 3, 5, 7, 3, 9])
    shared = torch.tensor([1, 3, 8])  # item 3 is the target of rows 1 and 4
    got = item_prediction_loss(h, w, targets, shared, kind, bias)
    per_row = []
    for t in range(6):
        own = shared[shared != targets[t]][None]  # (1, N') the row's negatives without its own item
        loss = item_prediction_loss(h[t : t + 1], w, targets[t : t + 1], own, kind, bias)
        if kind == "bpr":  # bpr averages over negatives; the masked one counts as a zero term
            loss = loss * own.shape[1] / len(shared)
        per_row.append(loss)
    torch.testing.assert_close(got, torch.stack(per_row).mean())
    assert torch.isfinite(
        torch.autograd.functional.jacobian(lambda x: item_prediction_loss(x, w, targets, shared, kind, bias), h)
    ).all()


def test_a_batch_shares_distinct_negatives_and_sasrec_learns_with_them(tmp_path):
    from fusionrec.api import train

    tiny = [
        "data.options.num_users=80",
        "data.options.num_items=60",
        "data.options.num_interactions=2000",
        "data.split.method=loo",
        "model.hidden_dim=16",
        "model.max_length=12",
        "train.batch_size=16",
        "train.lr=0.005",
        "train.epochs=4",
        "model.loss=sampled_ce",
        "model.num_negatives=20",
        "model.shared_negatives=true",
    ]
    run = train("sasrec", "synthetic", overrides=tiny, run_dir=tmp_path / "r", progress=False)
    losses = [h["loss"] for h in run.record["history"]]
    assert losses[-1] < losses[0]
    from fusionrec.api import build_task, resolve_config

    run_config, model_config = resolve_config(config=run.record["config"])
    batch = next(iter(build_task(run_config, run.dataset, model_config).train_batches(1)))
    assert batch.negatives.shape == (20,) and len(set(batch.negatives.tolist())) == 20


@pytest.mark.parametrize("name", ["marank", "mml"])
def test_models_scoring_their_own_negatives_refuse_shared_ones(name):
    from fusionrec.api import resolve_config
    from fusionrec.errors import ConfigError

    with pytest.raises(ConfigError, match="shared_negatives"):
        resolve_config(name, "synthetic", None, ["model.shared_negatives=true"])
