"""MARank: attention weights, padding invariance, the score by hand, training triples, it learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.models.sequential.marank import MARank, MARankConfig

U, I, W = 6, 20, 4


def make_batch(seqs, users=None, pad_to=None, targets=None, negatives=None, candidates=None):
    """Left-padded batch of item sequences (positions = distance from the end)."""
    L = pad_to or max(len(s) for s in seqs)
    items = torch.full((len(seqs), L), PAD_ITEM)
    for r, s in enumerate(seqs):
        items[r, L - len(s) :] = torch.tensor(s)
    positions = torch.where(items != PAD_ITEM, L - 1 - torch.arange(L), -1)
    users = torch.arange(len(seqs)) if users is None else torch.as_tensor(users)
    return SequenceBatch(users, items, positions, targets, negatives, candidates=candidates)


def model(**kw):
    torch.manual_seed(0)
    kw = {"hidden_dim": 16, "num_layers": 2, "num_union_layers": 2, "window": W, "dropout": 0.0, **kw}
    return MARank(U, I, **kw).eval()


def test_order_attention_sums_to_one_and_explain_is_aligned_with_the_input():
    net = model()
    batch = make_batch([[1, 2, 3, 4, 5, 6], [7, 8], [9]])
    maps = net.explain(batch)
    assert maps["orders"].shape == (3, 3)  # K + 1 = 3 orders
    torch.testing.assert_close(maps["orders"].sum(1), torch.ones(3))
    assert (maps["orders"] > 0).all()
    assert maps["item_orders"].shape == (3, 3, 6) and maps["individual"].shape == (3, 6)
    # every order's window weights sum to 1 and sit on the last W real slots only
    torch.testing.assert_close(maps["item_orders"].sum(-1), torch.ones(3, 3))
    assert (maps["item_orders"][0, :, : 6 - W] == 0).all() and (maps["item_orders"][0, :, 6 - W :] > 0).all()
    assert (maps["item_orders"][1, :, :4] == 0).all() and (maps["item_orders"][2, 0, -1] == 1)


def test_individual_attention_ignores_padding_and_items_before_the_window():
    net = model()
    seqs = [[4, 5], [7, 8, 9, 10, 11, 12]]
    base = net.score(make_batch(seqs))  # the short user is padded to 6 slots
    # a user with fewer than W items scores the same however much padding the batch adds
    torch.testing.assert_close(net.score(make_batch(seqs[:1]))[0], base[0])  # 2 slots, no padding
    torch.testing.assert_close(net.score(make_batch(seqs[:1], pad_to=W))[0], base[0])
    torch.testing.assert_close(net.score(make_batch(seqs, pad_to=9)), base)
    weights = net.explain(make_batch(seqs, pad_to=9))["individual"]  # (B, 9)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert (weights[0, :-2] == 0).all() and (weights[0, -2:] > 0).all()
    # only the last W items are read: an item before the window changes nothing, one inside does
    earlier = net.score(make_batch([[4, 5], [0, 1, 9, 10, 11, 12]]))
    torch.testing.assert_close(earlier, base)
    inside = net.score(make_batch([[4, 5], [7, 8, 9, 0, 11, 12]]))
    assert not torch.allclose(inside[1], base[1])
    # and the user matters (the same window, another user)
    assert not torch.allclose(net.score(make_batch(seqs, users=[3, 1]))[0], base[0])


def manual_union(net, user, window):
    """s of one (user, window) pair, from the module's parameters, equation by equation (eval mode)."""
    mo = net.multi_order

    def attend(scorer, e, u):
        hidden = e @ scorer.item.weight.T + scorer.item.bias
        if u is not None:
            hidden = hidden + u @ scorer.query.weight.T
        return torch.softmax(torch.sigmoid(torch.tanh(hidden) @ scorer.score.weight[0]), dim=0)

    e = net.item_context.weight[torch.tensor(window)]  # (l, D): real items only
    u = net.user_embedding.weight[user]  # (D,)
    orders = [attend(mo.item_attention[0], e, u) @ e + e[-1]]
    for k in range(len(mo.item_layers)):
        e = torch.relu(e @ mo.item_layers[k].weight.T + mo.item_layers[k].bias + e)
        u = torch.relu(u @ mo.user_layers[k].weight.T + mo.user_layers[k].bias + u)
        orders.append(attend(mo.item_attention[k + 1], e, u) @ e)
    stacked = torch.stack(orders)  # (K + 1, D)
    z = attend(mo.order_attention, stacked, None) @ stacked
    a = z
    for layer in net.union_layers:
        a = torch.relu(a @ layer.weight.T + layer.bias + a)
    return a + z


def test_score_is_user_item_plus_union_context_by_hand_and_candidates_agree():
    net = model()
    seqs, users = [[1, 2, 3, 4, 5, 6], [7, 8]], [4, 2]
    batch = make_batch(seqs, users=users)
    with torch.no_grad():
        expected = torch.stack(
            [
                net.user_embedding.weight[u] @ net.item_latent.weight.T
                + manual_union(net, u, s[-W:]) @ net.item_context.weight[:I].T
                for u, s in zip(users, seqs)
            ]
        )
        scores = net.score(batch)
        cand = torch.tensor([3, 0, 7, 3])
        sub = net.score(make_batch(seqs, users=users, candidates=cand))
    torch.testing.assert_close(scores, expected)
    assert scores.shape == (2, I)
    torch.testing.assert_close(sub, scores[:, cand])


def test_training_loss_is_bpr_over_every_target_slot_with_its_window():
    """loss(batch) equals the BPR of the explicit (user, window, target, negative) triples."""
    net = model(reg_weight=0.0)
    seqs = [[1, 2, 3, 4, 5, 6], [7, 8, 9]]
    targets = torch.tensor([[2, 3, 4, 5, 6, 10], [PAD_ITEM] * 3 + [8, 9, 11]])
    negatives = torch.randint(12, I, (2, 6, 2))
    batch = make_batch(seqs, users=[5, 1], targets=targets, negatives=negatives)
    diffs = []
    for r, (user, seq) in enumerate(zip([5, 1], seqs)):
        offset = 6 - len(seq)
        for t in range(len(seq)):
            scores = net.score(make_batch([seq[max(0, t + 1 - W) : t + 1]], users=[user]))[0]
            diffs.append(scores[targets[r, offset + t]] - scores[negatives[r, offset + t]])
    expected = -F.logsigmoid(torch.stack(diffs)).mean()
    out = net.loss(batch)
    torch.testing.assert_close(out.loss, expected)
    assert set(out.parts) == {"bpr", "reg"}
    # the L2 term is on: it adds a positive amount
    assert float(model(reg_weight=1e-2).loss(batch).loss.detach()) > float(expected.detach())


@pytest.mark.parametrize("loss", ["bpr", "ce"])
def test_loss_decreases_on_a_tiny_batch(loss):
    net = model(loss=loss, dropout=0.5).train()
    targets = torch.tensor([[2, 3, 4, 5], [PAD_ITEM, 6, 7, 8]])
    negatives = torch.randint(10, I, (2, 4, 1)) if loss == "bpr" else None
    batch = make_batch([[1, 2, 3, 4], [5, 6, 7]], targets=targets, negatives=negatives)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    before = float(net.loss(batch).loss.detach())
    for _ in range(15):
        opt.zero_grad()
        net.loss(batch).loss.backward()
        opt.step()
    assert float(net.loss(batch).loss.detach()) < before


def test_learns_a_deterministic_successor_pattern():
    """One shared user; every sequence walks the catalogue (next = item + 1 mod I): the window
    must carry the prediction."""
    torch.manual_seed(0)
    starts = torch.randint(0, I, (64,))
    seqs = (starts[:, None] + torch.arange(9)) % I  # (64, 9)
    zeros = torch.zeros(64, dtype=torch.long)
    batch = make_batch(seqs[:, :-1].tolist(), users=zeros, targets=seqs[:, 1:], negatives=None)
    net = model(loss="ce", hidden_dim=16)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        net.loss(batch).loss.backward()
        opt.step()
    net.eval()
    test = make_batch(((starts[:, None] + torch.arange(3, 8)) % I).tolist(), users=zeros)
    hits = net.score(test).argmax(1) == (starts + 8) % I
    assert hits.float().mean() > 0.9


def test_config_defaults_and_refuses_transformer_settings():
    cfg = MARankConfig()
    assert cfg.loss == "bpr" and cfg.window >= 1 and MARankConfig.objective == "next"
    with pytest.raises(ValueError, match="num_heads"):
        MARankConfig(num_heads=2)


def test_trains_through_the_sequential_task(tmp_path):
    from fusionrec.api import train

    run = train(
        "marank",
        "synthetic",
        overrides=[
            "data.options.num_users=60",
            "data.options.num_items=40",
            "data.options.num_interactions=1200",
            "data.split.method=loo",
            "model.hidden_dim=16",
            "model.max_length=20",
            "train.batch_size=16",
            "train.lr=0.01",
            "train.epochs=4",
            "train.num_threads=1",
        ],
        run_dir=tmp_path / "run",
        progress=False,
    )
    history = run.record["history"]
    assert len(history) == 4 and history[-1]["bpr"] < history[0]["bpr"]
    assert run.record["task"] == "sequential"
    assert 0.0 <= run.test_metrics["ndcg@10"] <= 1.0
