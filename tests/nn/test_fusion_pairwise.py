"""``pairwise`` scoring of fusion blocks (all B x C pairs of queries and item sets, for full ranking)."""

import torch


def test_modality_attention_pairwise_equals_forward_on_expanded_pairs():
    from fusionrec.nn.fusion import ModalityAttention

    torch.manual_seed(0)
    x = torch.randn(5, 3, 8)
    mask = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    q = torch.randn(4, 8)
    ib, ic = torch.arange(4).repeat_interleave(5), torch.arange(5).repeat(4)
    for interaction in ("product", "additive"):
        block = ModalityAttention(8, 3, hidden_dim=6, interaction=interaction)
        pairs = block.pairwise(x, mask, q)
        flat = block(x[ic], mask[ic], q[ib])
        torch.testing.assert_close(pairs.out.reshape(20, 8), flat.out)
        torch.testing.assert_close(pairs.weights.reshape(20, 3), flat.weights)
        no_query = block.pairwise(x, mask)
        torch.testing.assert_close(no_query.out[0], block(x, mask).out)
