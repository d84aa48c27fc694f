import torch

from fusionrec.data.batches import UserBatch
from fusionrec.models.topk.vbpr import VBPR


def test_content_term_lets_items_without_interactions_be_ranked_by_features():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    model = VBPR(1, features, embedding_dim=2, content_dim=2)
    with torch.no_grad():
        model.gamma_user.weight.zero_()
        model.gamma_item.weight.zero_()
        model.projection.weight.copy_(torch.eye(2))
        model.theta_user.weight.copy_(torch.tensor([[2.0, -1.0]]))
    scores = model.score(UserBatch(torch.tensor([0])))
    # only θ_u·E f_i remains: items 0 and 2 share features -> equal scores, item 1 lower
    torch.testing.assert_close(scores, torch.tensor([[2.0, -1.0, 2.0]]))


def test_missing_modality_rows_are_zero_after_standardisation(tiny_dataset):
    from fusionrec.models.topk.features import modality_tensors, standardize

    feats, masks = modality_tensors(tiny_dataset, ["visual"], "VBPR")
    std = standardize(feats["visual"], masks["visual"])
    assert (~masks["visual"]).any()
    assert torch.all(std[~masks["visual"]] == 0)
    torch.testing.assert_close(std[masks["visual"]].mean(0), torch.zeros(std.shape[1]), atol=1e-5, rtol=0)
