"""TransE: a triple whose tail is exactly the translated head scores best (distance 0)."""

import torch
import torch.nn.functional as F

from fusionrec.models.kg.transe import TransE


def test_the_translated_head_is_the_best_tail():
    torch.manual_seed(0)
    model = TransE(5, 2, dim=4).eval()
    with torch.no_grad():
        model.relation.weight[1] = F.normalize(model.entity.weight[3], dim=0) - F.normalize(
            model.entity.weight[0], dim=0
        )
        scores = model.score_queries(torch.tensor([0]), torch.tensor([1]))[0]
    assert int(scores.argmax()) == 3 and abs(float(scores[3])) < 1e-5
    by_hand = (
        -(
            F.normalize(model.entity.weight[0], dim=0)
            + model.relation.weight[1]
            - F.normalize(model.entity.weight, dim=1)
        )
        .abs()
        .sum(1)
    )
    torch.testing.assert_close(scores, by_hand.detach())


def test_margin_loss_is_zero_when_positives_win_by_the_margin():
    from fusionrec.models.kg.base import margin_ranking_loss

    assert float(margin_ranking_loss(torch.tensor([0.0]), torch.tensor([[-1.0, -2.0]]), 1.0)) == 0.0
    assert float(margin_ranking_loss(torch.tensor([0.0]), torch.tensor([[-0.5, -2.0]]), 1.0)) == 0.25


def test_relations_start_with_unit_norm():
    model = TransE(5, 3, dim=16)
    torch.testing.assert_close(model.relation.weight.norm(dim=1), torch.ones(3))
