"""ComplEx: Re(<h, r, conj(t)>) is asymmetric for a relation with an imaginary part, symmetric for a real one."""

import torch

from fusionrec.models.kg.complex import ComplEx


def score(model, h, r, t):
    with torch.no_grad():
        return float(model.score_queries(torch.tensor([h]), torch.tensor([r]))[0, t])


def test_complex_models_asymmetric_relations():
    torch.manual_seed(0)
    model = ComplEx(6, 2, dim=4).eval()
    assert abs(score(model, 1, 0, 4) - score(model, 4, 0, 1)) > 1e-3  # asymmetric
    with torch.no_grad():
        model.relation.weight[1, 4:] = 0.0  # a purely real relation
    assert abs(score(model, 1, 1, 4) - score(model, 4, 1, 1)) < 1e-6  # symmetric


def test_complex_score_by_hand():
    torch.manual_seed(1)
    model = ComplEx(3, 1, dim=2).eval()
    entity, relation = model.entity.weight.detach(), model.relation.weight.detach()
    h, r, t = (torch.complex(*v.chunk(2)) for v in (entity[0], relation[0], entity[2]))
    expected = float((h * r * t.conj()).sum().real)
    assert abs(score(model, 0, 0, 2) - expected) < 1e-5
