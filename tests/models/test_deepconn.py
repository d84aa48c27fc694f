"""DeepCoNN: a rating from the two documents' text alone (no ID embeddings), through an FM."""

from __future__ import annotations

import torch

from fusionrec.data.reviews import RatingBatch
from fusionrec.models.rating.deepconn import DeepCoNN, DeepCoNNConfig

CONFIG = DeepCoNNConfig(word_dim=8, num_filters=8, latent_dim=8, dropout=0.0)


def model():
    torch.manual_seed(0)
    tables = tuple(torch.nn.Embedding(30, 8, padding_idx=0) for _ in range(2))
    return DeepCoNN(3.0, CONFIG, tables).eval()


def batch(users, words):
    other = torch.zeros(words.shape[:2], dtype=torch.long)
    return RatingBatch(users, torch.tensor([0, 1]), torch.zeros(2), words, other, words, other)


def test_the_prediction_reads_text_not_ids():
    torch.manual_seed(3)
    words = torch.randint(1, 30, (2, 2, 6))
    net = model()
    with torch.no_grad():
        a = net.predict(batch(torch.tensor([0, 1]), words))
        b = net.predict(batch(torch.tensor([4, 5]), words))  # other users, same documents
        changed = words.clone()
        changed[:, :, :3] = torch.randint(1, 30, (2, 2, 3))
        c = net.predict(batch(torch.tensor([0, 1]), changed))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_padding_does_not_change_the_document_vector():
    torch.manual_seed(4)
    words = torch.randint(1, 30, (2, 1, 4))
    padded = torch.zeros(2, 3, 8, dtype=torch.long)
    padded[:, 0, :4] = words[:, 0]
    net = model()
    with torch.no_grad():
        torch.testing.assert_close(net.user_tower(words), net.user_tower(padded))
