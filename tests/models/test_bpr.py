import torch

from fusionrec.data.batches import PairBatch, UserBatch
from fusionrec.models.topk.bpr import BPR


def test_score_is_dot_product_plus_item_bias():
    model = BPR(3, 4, embedding_dim=2)
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        model.item_emb.weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 0.0], [-1.0, 3.0]]))
        model.item_bias.copy_(torch.tensor([0.0, 0.5, 1.0, 0.0]))
    scores = model.score(UserBatch(torch.tensor([1])))
    # user 1 = (0, 2): items -> 2+0, 0+0.5, 0+1, 6+0
    torch.testing.assert_close(scores, torch.tensor([[2.0, 0.5, 1.0, 6.0]]))


def test_bpr_loss_prefers_the_positive():
    model = BPR(1, 2, embedding_dim=2, item_bias=False, reg_weight=0.0)
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.tensor([[1.0, 0.0]]))
        model.item_emb.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.0]]))
    good = model.loss(PairBatch(torch.tensor([0]), torch.tensor([0]), torch.tensor([[1]])))
    bad = model.loss(PairBatch(torch.tensor([0]), torch.tensor([1]), torch.tensor([[0]])))
    # -log sigmoid(3) and -log sigmoid(-3)
    torch.testing.assert_close(good.parts["bpr"], -torch.nn.functional.logsigmoid(torch.tensor(3.0)))
    torch.testing.assert_close(bad.parts["bpr"], -torch.nn.functional.logsigmoid(torch.tensor(-3.0)))
