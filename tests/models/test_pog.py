"""POG: Gen starts from FOM's weights after stage 1, FOM is frozen, and the user's history changes the next item."""

import torch
from family_modules import family as load_family

from fusionrec.models.outfit.pog import POG, POGConfig


def built(**config):
    family = load_family("outfit")
    cfg = POGConfig(name="pog", **{**family.TINY["pog"], **config})
    dataset, task = family.tiny_task("pog", cfg)
    torch.manual_seed(0)
    return POG.from_dataset(cfg, dataset), task


def test_gen_is_initialised_from_the_pretrained_fom():
    model, task = built(pretrain_epochs=2)
    fom_before = {k: v.clone() for k, v in model.fom.state_dict().items()}
    model.on_fit_start(task)
    assert len(model.pretrain_history) == 2
    assert any(not torch.equal(fom_before[k], v) for k, v in model.fom.state_dict().items())  # stage 1 trained FOM
    torch.testing.assert_close(model.start.data, model.fom.mask_token.data)
    for key, value in model.fom.items.state_dict().items():
        torch.testing.assert_close(model.items_encoder.state_dict()[key], value)
    for gen, fom in zip(model.gen, model.fom.layers):
        for key, value in fom.state_dict().items():
            torch.testing.assert_close(gen.state_dict()[key], value)
    assert not any(p.requires_grad for p in model.fom.parameters())  # frozen after stage 1
    model.on_fit_start(task)  # a resumed fit does not pre-train again
    assert len(model.pretrain_history) == 2


def test_without_init_gen_keeps_its_own_weights():
    model, task = built(pretrain_epochs=1, init_from_fom=False)
    start = model.start.detach().clone()
    model.on_fit_start(task)
    torch.testing.assert_close(model.start.data, start)
    assert not torch.equal(model.start.data, model.fom.mask_token.data)


def test_the_history_personalises_the_next_item():
    model, _ = built()
    model.eval()
    prefix = torch.tensor([[3, 0]])
    prefix_mask = torch.tensor([[True, False]])
    candidates = torch.tensor([[10, 11, 12, 13]])
    with torch.no_grad():
        a = model.next_scores(
            prefix, prefix_mask, candidates, torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.bool)
        )
        b = model.next_scores(
            prefix, prefix_mask, candidates, torch.tensor([[50, 60, 70]]), torch.ones(1, 3, dtype=torch.bool)
        )
        padded = model.next_scores(
            torch.tensor([[3, 0, 0]]),
            torch.tensor([[True, False, False]]),
            candidates,
            torch.tensor([[1, 2, 3]]),
            torch.ones(1, 3, dtype=torch.bool),
        )
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a, padded)  # padding after the prefix is not read (causal)


def test_an_outfit_is_generated_for_a_history_one_item_per_category():
    from fusionrec.data.readers.polyvore import item_categories

    model, task = built()
    picks = task.recommend_from_history(model, [1, 2, 3], k=5)
    cats = item_categories(task.dataset)
    assert [int(cats[p.item]) for p in picks] == list(range(5))
    assert not {p.item for p in picks} & {1, 2, 3}
