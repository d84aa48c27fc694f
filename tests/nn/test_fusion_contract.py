"""Contract tests parametrised over every registered fusion (``FUSIONS``).

Each registry name has an entry in ``CASES``: how to build a tiny module, its example inputs, the
expected output shapes, where its attention weights are (and which entries may be attended), which
inputs are masked by which mask, and the permutation symmetry its maths promises. A meta-test fails
when a registered fusion has no entry here.

Standard masks: batch row 0 fully valid, row 1 partly masked, row 2 fully masked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import fusionrec.nn.fusion  # noqa: F401  (fills the registry)
from fusionrec.nn.fusion import (
    AttentionalGRU,
    CorrelationAwareFusion,
    CrossModalTransformer,
    FusionOutput,
    GatedGraphAttentionConv,
    MultiOrderAttention,
    NonInvasiveSelfAttention,
    PairFusionOutput,
    PersonalizedAttention,
    PrefixGuidedAttention,
    StackedCoAttention,
    build_modality_fusion,
)
from fusionrec.registry import FUSIONS

B, M, D, L, H = 3, 3, 8, 5, 2
SEED_MODELS = {
    "UVCAN", "MCPTR", "CMBF", "MML", "HCGCN", "POG", "NOR", "SAERS", "VECF", "MM-Rec",
    "MKGformer", "MGAT", "MARIO", "NOVA", "NRPA", "VLSNR", "MARank",
}  # fmt: skip

Inputs = dict[str, Any]
Outputs = dict[str, Tensor]
# (weights with the attended axis last, bool mask of attendable entries, normalised to sum to 1?)
Attention = list[tuple[Tensor, Tensor, bool]]


@dataclass
class Case:
    build: Callable[[], nn.Module]
    inputs: Callable[[torch.Generator], Inputs]
    shapes: dict[str, tuple[int, ...]]
    attention: Callable[[FusionOutput, Inputs], Attention]
    masked: dict[str, str] = field(default_factory=dict)  # input name -> mask name
    # inputs, generator -> (permuted inputs, original outputs -> expected outputs (subset of keys))
    symmetry: Callable[[Inputs, torch.Generator], tuple[Inputs, Callable[[Outputs], Outputs]]] | None = None
    # inputs, generator -> (perturbed inputs, outputs -> the slices that must not change)
    independence: Callable[[Inputs, torch.Generator], tuple[Inputs, Callable[[Outputs], Outputs]]] | None = None


# ----------------------------------------------------------------------------------------- helpers


def randn(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=g)


def std_mask(length: int) -> Tensor:
    """(B, length): row 0 all valid, row 1 every other entry masked, row 2 all masked."""
    mask = torch.ones(B, length, dtype=torch.bool)
    mask[1, 1::2] = False
    mask[2] = False
    return mask


def grid(rows: Tensor, cols: Tensor) -> Tensor:
    """(B, Lq), (B, Lk) -> (B, 1, Lq, Lk) valid entries of a per-head attention map."""
    return (rows[:, :, None] & cols[:, None, :])[:, None]


def flatten(output: FusionOutput) -> Outputs:
    flat = {"out": output.out}
    if isinstance(output, PairFusionOutput):
        flat["out_b"] = output.out_b
    if isinstance(output.weights, Tensor):
        flat["weights"] = output.weights
    elif isinstance(output.weights, dict):
        flat.update({f"weights.{k}": v for k, v in output.weights.items()})
    return flat


def run(module: nn.Module, inputs: Inputs) -> Outputs:
    return flatten(module(**inputs))


def permuted(perm: Tensor, dim: int = 1, **tensors: Tensor) -> dict[str, Tensor]:
    return {k: v.index_select(dim, perm) for k, v in tensors.items()}


# ------------------------------------------------------------------------------- modality fusors


def modality_inputs(g: torch.Generator) -> Inputs:
    return {"xs": randn(g, B, M, D), "mask": std_mask(M), "query": randn(g, B, D)}


def modality_case(
    name: str,
    weights: str | None,
    normalised: bool = True,
    invariant: bool = True,
    extra_shapes: dict[str, tuple[int, ...]] | None = None,
    **opts: Any,
) -> Case:
    def attention(o: FusionOutput, x: Inputs) -> Attention:
        if weights is None:
            return []
        w = o.weights if weights == "" else o.weights[weights]
        found = [(w, x["mask"], normalised)]
        if isinstance(o.weights, dict) and "self" in o.weights:  # (B, N, H, M, M)
            found.append((o.weights["self"], grid(x["mask"], x["mask"])[:, None], True))
        return found

    def symmetry(x: Inputs, g: torch.Generator):
        perm = torch.randperm(M, generator=g)
        new = {**x, **permuted(perm, xs=x["xs"], mask=x["mask"])}

        def expect(out: Outputs) -> Outputs:
            exp = {"out": out["out"]}
            key = {None: None, "": "weights"}.get(weights, f"weights.{weights}")
            if key is not None:
                exp[key] = out[key][:, perm]
            return exp

        return new, expect

    shapes = {"out": (B, D)}
    if weights is not None:
        shapes["weights" if weights == "" else f"weights.{weights}"] = (B, M)
    shapes.update(extra_shapes or {})
    return Case(
        build=lambda: build_modality_fusion(name, D, M, **opts),
        inputs=modality_inputs,
        shapes=shapes,
        attention=attention,
        masked={"xs": "mask"},
        symmetry=symmetry if invariant else None,
    )


# ------------------------------------------------------------------------------------ the table


def co_attention_inputs(g: torch.Generator) -> Inputs:
    return {"a": randn(g, B, 4, D), "b": randn(g, B, L, D), "mask_a": std_mask(4), "mask_b": std_mask(L)}


def co_attention_symmetry(x: Inputs, g: torch.Generator):
    perm = torch.randperm(4, generator=g)
    new = {**x, **permuted(perm, a=x["a"], mask_a=x["mask_a"])}
    return new, lambda o: {"out": o["out"], "out_b": o["out_b"], "weights.a": o["weights.a"][..., perm]}


def cross_modal_inputs(g: torch.Generator) -> Inputs:
    return {"a": randn(g, B, 4, D), "b": randn(g, B, L, 12), "mask_a": std_mask(4), "mask_b": std_mask(L)}


def cross_modal_attention(o: FusionOutput, x: Inputs) -> Attention:
    ma, mb, w = x["mask_a"], x["mask_b"], o.weights
    return [
        (w["a_cross"], grid(ma, mb), True),
        (w["a_self"], grid(ma, ma), True),
        (w["b_cross"], grid(mb, ma), True),
        (w["b_self"], grid(mb, mb), True),
    ]


def cross_modal_symmetry(x: Inputs, g: torch.Generator):
    perm = torch.randperm(4, generator=g)
    new = {**x, **permuted(perm, a=x["a"], mask_a=x["mask_a"])}
    return new, lambda o: {"out": o["out"][:, perm], "out_b": o["out_b"]}


def sequence_symmetry(keys: tuple[str, ...], equivariant: bool, length: int = L):
    """Permute axis 1 of ``keys`` (and "mask"); the output is permuted too when ``equivariant``."""

    def symmetry(x: Inputs, g: torch.Generator):
        perm = torch.randperm(length, generator=g)
        new = {**x, **permuted(perm, **{k: x[k] for k in keys + ("mask",)})}
        return new, lambda o: {"out": o["out"][:, perm] if equivariant else o["out"]}

    return symmetry


def personalized_symmetry(x: Inputs, g: torch.Generator):
    perm = torch.randperm(L, generator=g)
    new = {**x, **permuted(perm, x=x["x"], mask=x["mask"])}
    return new, lambda o: {"out": o["out"], "weights": o["weights"][:, perm]}


def nova_inputs(g: torch.Generator) -> Inputs:
    return {"ids": randn(g, B, L, D), "side": randn(g, B, L, 2, D), "mask": std_mask(L)}


NUM_NODES = 7
# two components: nodes 0-3 and nodes 4-6 (undirected, both directions), plus a self-loop on 5
EDGES = torch.tensor(
    [[0, 1, 1, 2, 2, 3, 0, 3, 4, 5, 5, 6, 5],
     [1, 0, 2, 1, 3, 2, 3, 0, 5, 4, 6, 5, 5]]
)  # fmt: skip


def graph_attention(o: FusionOutput, x: Inputs) -> Attention:
    edges = x["edge_index"]
    dense = torch.zeros(NUM_NODES, NUM_NODES, dtype=o.weights.dtype)  # (targets, sources)
    dense[edges[1], edges[0]] = o.weights
    valid = torch.zeros(NUM_NODES, NUM_NODES, dtype=torch.bool)
    valid[edges[1], edges[0]] = True
    valid.fill_diagonal_(False)  # self-loops are removed
    return [(dense, valid, True)]


def graph_symmetry(x: Inputs, g: torch.Generator):
    perm = torch.randperm(NUM_NODES, generator=g)  # new node k is old node perm[k]
    relabel = torch.argsort(perm)
    new = {"x": x["x"][perm], "edge_index": relabel[x["edge_index"]]}
    return new, lambda o: {"out": o["out"][perm], "weights": o["weights"]}


def graph_independence(x: Inputs, g: torch.Generator):
    features = x["x"].clone()
    features[:4] = randn(g, 4, D) * 3
    return {**x, "x": features}, lambda o: {"out": o["out"][4:], "weights": o["weights"][8:]}


def prefix_inputs(g: torch.Generator) -> Inputs:
    return {"x": randn(g, B, 4, D), "prefix": randn(g, B, 3, 6), "mask": std_mask(4), "prefix_mask": std_mask(3)}


def prefix_attention(o: FusionOutput, x: Inputs) -> Attention:
    keys = torch.cat([x["prefix_mask"], x["mask"]], dim=1)
    return [(o.weights, grid(x["mask"], keys), True)]


def caf_inputs(g: torch.Generator) -> Inputs:
    return {"x": randn(g, B, 4, D), "vision": randn(g, B, L, 6), "mask": std_mask(4), "vision_mask": std_mask(L)}


def caf_symmetry(x: Inputs, g: torch.Generator):
    perm = torch.randperm(L, generator=g)
    new = {**x, **permuted(perm, vision=x["vision"], vision_mask=x["vision_mask"])}
    return new, lambda o: {"out": o["out"], "weights": o["weights"][..., perm]}


def multi_order_symmetry(x: Inputs, g: torch.Generator):
    # the last item is added to order 0, so only permutations that keep it last are symmetries
    perm = torch.cat([torch.randperm(L - 1, generator=g), torch.tensor([L - 1])])
    new = {**x, **permuted(perm, x=x["x"], mask=x["mask"])}
    return new, lambda o: {"out": o["out"], "weights.items": o["weights.items"][..., perm]}


def seq_inputs(g: torch.Generator, query_dim: int = D) -> Inputs:
    return {"x": randn(g, B, L, D), "query": randn(g, B, query_dim), "mask": std_mask(L)}


def rows_valid(mask: Tensor, n: int) -> Tensor:
    return mask.any(dim=1, keepdim=True).expand(-1, n)


CASES: dict[str, Case] = {
    "concat": modality_case("concat", None, invariant=False),
    "sum": modality_case("sum", None),
    "mean": modality_case("mean", ""),
    "gated": modality_case("gated", "", normalised=False),
    "product": modality_case("product", None),
    "modality_attention": modality_case("modality_attention", ""),
    "modality_self_attention": modality_case(
        "modality_self_attention",
        "pool",
        extra_shapes={"weights.self": (B, 2, H, M, M)},
        num_heads=H,
        num_layers=2,
    ),
    "co_attention": Case(
        build=lambda: StackedCoAttention(D, num_steps=2),
        inputs=co_attention_inputs,
        shapes={"out": (B, D), "out_b": (B, D), "weights.a": (B, 2, 4), "weights.b": (B, 2, L)},
        attention=lambda o, x: [
            (o.weights["a"], x["mask_a"][:, None].expand(-1, 2, -1), True),
            (o.weights["b"], x["mask_b"][:, None].expand(-1, 2, -1), True),
        ],
        masked={"a": "mask_a", "b": "mask_b"},
        symmetry=co_attention_symmetry,
    ),
    "cross_modal_transformer": Case(
        build=lambda: CrossModalTransformer(D, dim_b=12, num_heads=H, hidden_dim=16),
        inputs=cross_modal_inputs,
        shapes={
            "out": (B, 4, D),
            "out_b": (B, L, 12),
            "weights.a_cross": (B, H, 4, L),
            "weights.a_self": (B, H, 4, 4),
            "weights.b_cross": (B, H, L, 4),
            "weights.b_self": (B, H, L, L),
        },  # fmt: skip
        attention=cross_modal_attention,
        masked={"a": "mask_a", "b": "mask_b"},
        symmetry=cross_modal_symmetry,
    ),
    "personalized_attention": Case(
        build=lambda: PersonalizedAttention(D, 6),
        inputs=lambda g: seq_inputs(g, 6),
        shapes={"out": (B, D), "weights": (B, L)},
        attention=lambda o, x: [(o.weights, x["mask"], True)],
        masked={"x": "mask"},
        symmetry=personalized_symmetry,
    ),
    "non_invasive_attention": Case(
        build=lambda: NonInvasiveSelfAttention(D, 2, num_heads=H),
        inputs=nova_inputs,
        shapes={"out": (B, L, D), "weights.attention": (B, H, L, L), "weights.fusion": (B, L, 3)},
        attention=lambda o, x: [
            (o.weights["attention"], grid(x["mask"], x["mask"]), True),
            (o.weights["fusion"], x["mask"][..., None].expand(-1, -1, 3), False),
        ],
        masked={"ids": "mask", "side": "mask"},
        symmetry=sequence_symmetry(("ids", "side"), equivariant=True),
    ),
    "gated_graph_attention": Case(
        build=lambda: GatedGraphAttentionConv(D, 6),
        inputs=lambda g: {"x": randn(g, NUM_NODES, D), "edge_index": EDGES},
        shapes={"out": (NUM_NODES, 6), "weights": (EDGES.shape[1],)},
        attention=graph_attention,
        symmetry=graph_symmetry,
        independence=graph_independence,
    ),
    "prefix_guided_attention": Case(
        build=lambda: PrefixGuidedAttention(D, prefix_dim=6, num_heads=H),
        inputs=prefix_inputs,
        shapes={"out": (B, 4, D), "weights": (B, H, 4, 7)},
        attention=prefix_attention,
        masked={"x": "mask", "prefix": "prefix_mask"},
        symmetry=sequence_symmetry(("x",), equivariant=True, length=4),
    ),
    "correlation_aware_fusion": Case(
        build=lambda: CorrelationAwareFusion(D, vision_dim=6, hidden_dim=16),
        inputs=caf_inputs,
        shapes={"out": (B, 4, D), "weights": (B, 4, L)},
        attention=lambda o, x: [(o.weights, x["mask"][:, :, None] & x["vision_mask"][:, None, :], True)],
        masked={"x": "mask", "vision": "vision_mask"},
        symmetry=caf_symmetry,
    ),
    "multi_order_attention": Case(
        build=lambda: MultiOrderAttention(D, num_orders=2),
        inputs=seq_inputs,
        shapes={"out": (B, D), "weights.items": (B, 3, L), "weights.orders": (B, 3)},
        attention=lambda o, x: [
            (o.weights["items"], x["mask"][:, None].expand(-1, 3, -1), True),
            (o.weights["orders"], rows_valid(x["mask"], 3), True),
        ],
        masked={"x": "mask"},
        symmetry=multi_order_symmetry,
    ),
    "attentional_gru": Case(
        build=lambda: AttentionalGRU(D, 6, query_dim=5),
        inputs=lambda g: seq_inputs(g, 5),
        shapes={"out": (B, 6), "weights": (B, L)},
        attention=lambda o, x: [(o.weights, x["mask"], True)],
        masked={"x": "mask"},
        symmetry=None,  # a recurrence: order matters
    ),
}

NAMES = sorted(CASES)


def make(name: str, seed: int = 0) -> tuple[nn.Module, Inputs, torch.Generator]:
    torch.manual_seed(seed)
    module = CASES[name].build().eval()
    g = torch.Generator().manual_seed(seed + 1)
    return module, CASES[name].inputs(g), g


def assert_close(got: Outputs, want: Outputs, keys=None) -> None:
    for key in keys or want:
        torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-4, msg=lambda m: f"{key}: {m}")  # noqa: B023


# ------------------------------------------------------------------------------------------ tests


def test_every_registered_fusion_has_a_test_case():
    missing = sorted(set(FUSIONS.names()) - set(CASES))
    stale = sorted(set(CASES) - set(FUSIONS.names()))
    assert not missing, f"registered fusions without an entry in CASES: {missing}"
    assert not stale, f"CASES entries for unregistered names: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_registry_metadata(name):
    meta = FUSIONS.entry(name).meta
    assert isinstance(meta["equation"], str) and meta["equation"] and "\n" not in meta["equation"]
    assert isinstance(meta["used_by"], tuple) and meta["used_by"]
    assert set(meta["used_by"]) <= SEED_MODELS, set(meta["used_by"]) - SEED_MODELS
    assert isinstance(meta["family"], str) and meta["family"]
    assert isinstance(meta["modality_fusor"], bool)
    assert FUSIONS.get(name).__doc__ and "Shapes:" in FUSIONS.get(name).__doc__


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_and_finite(name):
    module, inputs, _ = make(name)
    out = run(module, inputs)
    assert {k: tuple(v.shape) for k, v in out.items()} == CASES[name].shapes
    for key, value in out.items():
        assert torch.isfinite(value).all(), f"{key} has NaN/inf (fully masked rows must not)"


@pytest.mark.parametrize("name", NAMES)
def test_attention_weights_normalised_and_zero_where_masked(name):
    module, inputs, _ = make(name)
    output = module(**inputs)
    found = CASES[name].attention(output, inputs)
    assert found or output.weights is None
    for weights, valid, normalised in found:
        valid = torch.broadcast_to(valid, weights.shape)
        assert (weights[~valid] == 0).all(), "masked entries must get exactly zero weight"
        assert (weights >= 0).all()
        if normalised:
            sums = weights.sum(-1)
            expected = valid.any(-1).to(sums.dtype)  # 1 where anything may be attended, else 0
            torch.testing.assert_close(sums, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].masked])
def test_masked_values_do_not_change_the_output(name):
    module, inputs, g = make(name)
    before = run(module, inputs)
    changed = dict(inputs)
    for key, mask_key in CASES[name].masked.items():
        value, mask = inputs[key].clone(), inputs[mask_key]
        value[~mask] = randn(g, *value[~mask].shape) * 10
        changed[key] = value
    assert_close(run(module, changed), before)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    module, inputs, g = make(name)
    for value in inputs.values():
        if isinstance(value, Tensor) and value.is_floating_point():
            value.requires_grad_()
    out = run(module, inputs)
    loss = sum((out[k] * randn(g, *out[k].shape)).sum() for k in ("out", "out_b") if k in out)
    loss.backward()
    params = dict(module.named_parameters())
    dead = [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches: {dead}"
    assert any(v.grad is not None and v.grad.abs().sum() > 0 for v in inputs.values() if isinstance(v, Tensor))


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].symmetry])
def test_permutation_symmetry(name):
    module, inputs, g = make(name)
    permuted_inputs, expect = CASES[name].symmetry(inputs, g)
    assert_close(run(module, permuted_inputs), expect(run(module, inputs)))


def _is_float(value: Any) -> bool:
    return isinstance(value, Tensor) and value.is_floating_point()


def default_independence(inputs: Inputs, g: torch.Generator):
    changed = {k: torch.cat([randn(g, 1, *v.shape[1:]) * 3, v[1:]]) if _is_float(v) else v for k, v in inputs.items()}
    return changed, lambda o: {k: v[1:] for k, v in o.items()}


@pytest.mark.parametrize("name", NAMES)
def test_batch_items_are_independent(name):
    module, inputs, g = make(name)
    independence = CASES[name].independence or default_independence
    changed, rest = independence(inputs, g)
    before, after = run(module, inputs), run(module, changed)
    assert_close(rest(after), rest(before))
    assert not torch.allclose(after["out"], before["out"]), "the perturbation must change something"


def _double(value: Any) -> Any:
    return value.double() if _is_float(value) else value


@pytest.mark.parametrize("name", NAMES)
def test_dtype_agnostic(name):
    module, inputs, _ = make(name)
    single = run(module, inputs)
    double = run(module.double(), {k: _double(v) for k, v in inputs.items()})
    for key, value in double.items():
        assert value.dtype == torch.float64, key
        torch.testing.assert_close(value.float(), single[key], atol=1e-4, rtol=1e-3)
