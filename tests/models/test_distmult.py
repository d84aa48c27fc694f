"""DistMult: the diagonal bilinear score is symmetric, f(h, r, t) = f(t, r, h)."""

import torch

from fusionrec.models.kg.distmult import DistMult


def test_distmult_is_symmetric_and_trilinear():
    torch.manual_seed(0)
    model = DistMult(6, 2, dim=5).eval()
    with torch.no_grad():
        forward = model.score_queries(torch.tensor([1]), torch.tensor([0]))[0, 4]
        backward = model.score_queries(torch.tensor([4]), torch.tensor([0]))[0, 1]
        by_hand = (model.entity.weight[1] * model.relation.weight[0] * model.entity.weight[4]).sum()
    torch.testing.assert_close(forward, backward)
    torch.testing.assert_close(forward, by_hand)
