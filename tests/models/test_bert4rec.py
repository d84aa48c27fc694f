"""BERT4Rec: bidirectional attention, Cloze targets at masked slots only, the mask slot predicts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fusionrec.data.batches import PAD_ITEM, SequenceBatch
from fusionrec.models.sequential.bert4rec import BERT4Rec

I = 20
MASK = I


def make_batch(seqs, pad_to=None, targets=None):
    L = pad_to or max(len(s) for s in seqs)
    items = torch.full((len(seqs), L), PAD_ITEM)
    for r, s in enumerate(seqs):
        items[r, L - len(s) :] = torch.tensor(s)
    positions = torch.where(items != PAD_ITEM, L - 1 - torch.arange(L), -1)
    return SequenceBatch(torch.arange(len(seqs)), items, positions, targets)


def model(**kw):
    torch.manual_seed(0)
    return BERT4Rec(I, hidden_dim=16, num_layers=2, num_heads=2, max_length=10, **kw).eval()


def test_attention_is_bidirectional():
    net = model()
    ha = net.encode(make_batch([[1, 2, 3, 4, 5, MASK]]))[0]
    hb = net.encode(make_batch([[1, 2, 3, 9, 8, MASK]]))[0]
    assert not torch.allclose(ha[:, :3], hb[:, :3])  # earlier slots see later items
    attention = net.explain(make_batch([[1, 2, 3]]))["attention"]
    assert attention.shape == (2, 1, 2, 3, 3) and attention.triu(1).abs().sum() > 0


def test_loss_is_cross_entropy_at_the_masked_slots_only():
    net = model()
    batch = make_batch([[1, MASK, 3, MASK], [5, 6, MASK]], targets=torch.tensor([[-1, 2, -1, 4], [-1, -1, -1, 7]]))
    hidden = net.encode(batch)[0]
    h = net.transform(hidden[torch.tensor([0, 0, 1]), torch.tensor([1, 3, 3])])
    logits = h @ net.item_embedding.weight[:I].T + net.item_bias
    expected = F.cross_entropy(logits, torch.tensor([2, 4, 7]))
    torch.testing.assert_close(net.loss(batch).loss, expected)


def test_scores_come_from_the_mask_slot_and_ignore_padding():
    net = model()
    batch = make_batch([[4, 5, 6, MASK], [7, MASK]])
    h = net.transform(net.encode(batch)[0][:, -1])
    torch.testing.assert_close(net.score(batch), h @ net.item_embedding.weight[:I].T + net.item_bias)
    torch.testing.assert_close(net.score(make_batch([[4, 5, 6, MASK], [7, MASK]], pad_to=8)), net.score(batch))


def test_mask_token_and_padding_rows():
    net = model()
    assert net.item_embedding.weight.shape[0] == I + 2  # items, mask token, padding
    assert torch.all(net.item_embedding.weight[I + 1] == 0)
