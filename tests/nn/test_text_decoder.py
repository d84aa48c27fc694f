"""The attentive GRU decoder: masking, the memory prior, learning a mapping, greedy decoding."""

from __future__ import annotations

import torch

from fusionrec.nn.text_decoder import BOS, EOS, PAD, AttentiveGRUDecoder, WordVocabulary, pad_sequences


def test_vocabulary_round_trip_and_order():
    vocab = WordVocabulary.fit(["red dress red", "blue dress", "red"], max_size=6)
    assert vocab.tokens[4:] == ["red", "dress"]  # by frequency, cut to max_size
    ids = vocab.encode("Red dress, blue!", max_len=10)
    assert ids[0] == BOS and ids[-1] == EOS and vocab.decode(ids[1:]) == "red dress <unk>"
    assert WordVocabulary.from_dict(vocab.to_dict()).tokens == vocab.tokens


def test_masked_slots_get_no_attention_and_the_prior_shifts_it():
    torch.manual_seed(0)
    decoder = AttentiveGRUDecoder(vocab_size=10, embed_dim=4, hidden_dim=6, memory_dim=5)
    memory = torch.randn(2, 3, 5)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    inputs = torch.tensor([[BOS, 5], [BOS, 6]])
    out = decoder(inputs, memory, mask)
    assert out.logits.shape == (2, 2, 10) and out.attention.shape == (2, 2, 3)
    assert torch.all(out.attention[0, :, 2] == 0)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, 2))
    prior = torch.tensor([[0.98, 0.01, 0.01], [0.01, 0.01, 0.98]])
    shifted = decoder(inputs, memory, mask, memory_prior=prior).attention
    assert torch.all(shifted[0, :, 0] > out.attention[0, :, 0]) and torch.all(shifted[1, :, 2] > out.attention[1, :, 2])


def test_learns_to_say_what_the_memory_holds():
    """Two memories, two sentences: after training, greedy decoding of each memory gives its sentence."""
    torch.manual_seed(0)
    decoder = AttentiveGRUDecoder(vocab_size=8, embed_dim=8, hidden_dim=16, memory_dim=4)
    memory = torch.eye(4)[:2, None, :].repeat(1, 2, 1)  # (2, 2, 4)
    targets = pad_sequences([[BOS, 4, 5, EOS], [BOS, 6, 7, 6, EOS]])
    optimiser = torch.optim.Adam(decoder.parameters(), lr=0.05)
    for _ in range(150):
        optimiser.zero_grad()
        loss = decoder.nll(targets, memory).mean()
        loss.backward()
        optimiser.step()
    tokens, attention = decoder.generate(memory, max_len=6)
    assert tokens[0, :3].tolist() == [4, 5, EOS] and tokens[1, :4].tolist() == [6, 7, 6, EOS]
    assert tokens[0, 3:].eq(PAD).all() and attention.shape[:2] == tokens.shape


def test_nll_ignores_padding():
    torch.manual_seed(0)
    decoder = AttentiveGRUDecoder(vocab_size=8, embed_dim=4, hidden_dim=4, memory_dim=3)
    memory = torch.randn(1, 2, 3)
    short = torch.tensor([[BOS, 4, EOS]])
    padded = torch.tensor([[BOS, 4, EOS, PAD, PAD]])
    torch.testing.assert_close(decoder.nll(short, memory), decoder.nll(padded, memory))
