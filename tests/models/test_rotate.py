"""RotatE: relations are unit-modulus rotations; the rotated head scores exactly gamma."""

import torch

from fusionrec.models.kg.rotate import RotatE, rotation


def test_relations_have_modulus_one_and_preserve_entity_moduli():
    torch.manual_seed(0)
    model = RotatE(5, 3, dim=4, gamma=6.0).eval()
    real, imaginary = rotation(model.phase.weight)
    torch.testing.assert_close(real**2 + imaginary**2, torch.ones(3, 4))
    with torch.no_grad():
        q_re, q_im = model._queries(torch.tensor([2]), torch.tensor([1]))
    e_re, e_im = model.entity.weight[2].detach().chunk(2)
    torch.testing.assert_close(q_re[0] ** 2 + q_im[0] ** 2, e_re**2 + e_im**2)


def test_the_rotated_head_scores_gamma_and_the_inverse_rotation_undoes_it():
    torch.manual_seed(0)
    model = RotatE(4, 2, dim=3, gamma=6.0).eval()
    with torch.no_grad():
        q_re, q_im = model._queries(torch.tensor([0]), torch.tensor([1]))
        model.entity.weight[3] = torch.cat([q_re[0], q_im[0]])  # tail := head rotated by relation 1
        scores = model.score_queries(torch.tensor([0]), torch.tensor([1]))[0]
        heads = model.score_queries(torch.tensor([3]), torch.tensor([1 + 2]))[0]  # (?, r1, 3): rotate back
    assert abs(float(scores[3]) - 6.0) < 1e-4 and int(scores.argmax()) == 3
    assert abs(float(heads[0]) - 6.0) < 1e-4


def test_self_adversarial_weights_favour_hard_negatives():
    from fusionrec.models.kg.base import self_adversarial_loss

    positive = torch.tensor([1.0])
    hard_first = self_adversarial_loss(positive, torch.tensor([[2.0, -5.0]]), temperature=1.0)
    uniform = self_adversarial_loss(positive, torch.tensor([[2.0, -5.0]]), temperature=0.0)
    assert float(hard_first) > float(uniform)  # the hard negative (score 2) weighs more than half
