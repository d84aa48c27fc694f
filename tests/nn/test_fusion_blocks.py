"""One or more tests per fusion block of what defines it (the contract tests live in
``test_fusion_contract.py``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from fusionrec.nn.fusion import (
    AttentionalGRU,
    ConcatFusion,
    CorrelationAwareFusion,
    CrossModalTransformer,
    GatedFusion,
    GatedGraphAttentionConv,
    MeanFusion,
    ModalityAttention,
    ModalitySelfAttention,
    MultiOrderAttention,
    NonInvasiveSelfAttention,
    PersonalizedAttention,
    PrefixGuidedAttention,
    ProductFusion,
    StackedCoAttention,
    SumFusion,
)
from fusionrec.nn.fusion.functional import merge_heads, split_heads
from fusionrec.nn.fusion.gated_graph_attention import gated_scores

MASK = torch.tensor([[True, True, True], [True, False, True]])


def close(a, b, **kw):
    torch.testing.assert_close(a, b, atol=kw.pop("atol", 1e-5), rtol=kw.pop("rtol", 1e-4), **kw)


# ----------------------------------------------------------------------------------------- simple


def test_simple_fusors_hand_computed():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    close(SumFusion(2, 3)(x, MASK).out, torch.tensor([[9.0, 12.0], [6.0, 8.0]]))
    close(MeanFusion(2, 3)(x, MASK).out, torch.tensor([[3.0, 4.0], [3.0, 4.0]]))
    close(ProductFusion(2, 3)(x, MASK).out, torch.tensor([[15.0, 48.0], [5.0, 12.0]]))
    concat = ConcatFusion(2, 3)
    filled = x * MASK[..., None]
    close(concat(x, MASK).out, concat.proj(filled.flatten(1)))


def test_gated_fusion_is_novas_sigmoid_gate():
    torch.manual_seed(0)
    gated = GatedFusion(4, 3)
    x = torch.randn(2, 3, 4)
    out = gated(x, MASK)
    gates = torch.sigmoid(x @ gated.gate.weight[0]) * MASK  # (B, M)
    close(out.weights, gates)
    close(out.out, (gates[..., None] * x).sum(1))
    assert gated.gate.bias is None  # G = σ(F W^F), no bias in the paper


# ------------------------------------------------------------------------------ modality attention


def test_modality_attention_is_personalised_by_the_query():
    torch.manual_seed(0)
    fusion = ModalityAttention(6, 3)
    x = torch.randn(2, 3, 6)
    a, b = fusion(x, query=torch.randn(2, 6)), fusion(x, query=torch.randn(2, 6))
    assert not torch.allclose(a.weights, b.weights), "different users weigh modalities differently"
    close(a.out, torch.einsum("bm,bmd->bd", a.weights, x))  # a convex combination of the modalities


def test_modality_attention_product_interaction_scores_query_times_modality():
    torch.manual_seed(0)
    fusion = ModalityAttention(6, 3, interaction="product")
    x, q = torch.randn(2, 3, 6), torch.randn(2, 6)
    expected = torch.softmax(fusion.scorer(x * q[:, None]), dim=1)  # MARIO: u ⊙ v^m
    close(fusion(x, query=q).weights, expected)


def test_modality_self_attention_mixes_modalities_before_pooling():
    torch.manual_seed(0)
    fusion = ModalitySelfAttention(8, 3, num_heads=2, pooling="mean").eval()
    x = torch.randn(2, 3, 8)
    out = fusion(x)
    close(out.weights["pool"], torch.full((2, 3), 1 / 3))
    changed = x.clone()
    changed[:, 2] += 1.0
    # modality 2 changes how modality 0 attends: the tokens interact
    assert not torch.allclose(fusion(changed).weights["self"][:, 0, :, 0], out.weights["self"][:, 0, :, 0])


def test_modality_embedding_breaks_permutation_invariance():
    torch.manual_seed(0)
    fusion = ModalitySelfAttention(8, 3, modality_embedding=True).eval()
    nn.init.normal_(fusion.modality_embedding)
    x = torch.randn(2, 3, 8)
    assert not torch.allclose(fusion(x).out, fusion(x[:, [2, 0, 1]]).out)


# ----------------------------------------------------------------------------------- co-attention


def test_co_attention_more_steps_change_the_result():
    torch.manual_seed(0)
    one, two = StackedCoAttention(8, num_steps=1), StackedCoAttention(8, num_steps=2)
    two.score_a[0].load_state_dict(one.score_a[0].state_dict())
    two.score_b[0].load_state_dict(one.score_b[0].state_dict())
    a, b = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    r1, r2 = one(a, b), two(a, b)
    close(r2.weights["a"][:, 0], r1.weights["a"][:, 0])  # step 1 is shared
    assert not torch.allclose(r1.out, r2.out) and not torch.allclose(r1.out_b, r2.out_b)
    assert not torch.allclose(r2.weights["b"][:, 1], r2.weights["b"][:, 0])  # step 2 re-attends


def test_co_attention_user_query_guides_the_item_side():
    torch.manual_seed(0)
    block = StackedCoAttention(8, num_steps=1)
    a, b = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    w1 = block(a, b, query_a=torch.randn(2, 8)).weights["b"]
    w2 = block(a, b, query_a=torch.randn(2, 8)).weights["b"]
    assert not torch.allclose(w1, w2)


def test_co_attention_one_parallel_step_is_nors_mutual_attention():
    torch.manual_seed(0)
    block = StackedCoAttention(8, num_steps=1, parallel=True, residual=False)
    a, b = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    out = block(a, b)
    alpha_a = torch.softmax(block.score_a[0](a, b.mean(1)), dim=1)  # a_t from mean(F_b)
    alpha_b = torch.softmax(block.score_b[0](b, a.mean(1)), dim=1)
    close(out.out, (alpha_a[..., None] * a).sum(1))
    close(out.out_b, (alpha_b[..., None] * b).sum(1))


def test_co_attention_pairwise_equals_forward_on_expanded_pairs():
    torch.manual_seed(0)
    for parallel, residual in ((False, True), (True, False)):
        block = StackedCoAttention(8, num_steps=3, parallel=parallel, residual=residual)
        a, b = torch.randn(3, 4, 8), torch.randn(5, 2, 8)
        mask_a = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
        mask_b = torch.tensor([[1, 1], [1, 0], [0, 0], [0, 1], [1, 1]], dtype=torch.bool)
        qa, qb = torch.randn(3, 8), torch.randn(5, 8)
        pairs = block.pairwise(a, b, mask_a, mask_b, qa, qb)
        ia, ib = torch.arange(3).repeat_interleave(5), torch.arange(5).repeat(3)
        flat = block(a[ia], b[ib], mask_a[ia], mask_b[ib], qa[ia], qb[ib])
        close(pairs.out.reshape(15, 8), flat.out)
        close(pairs.out_b.reshape(15, 8), flat.out_b)
        close(pairs.weights["a"].reshape(15, 3, 4), flat.weights["a"])
        close(pairs.weights["b"].reshape(15, 3, 2), flat.weights["b"])
        without_queries = block.pairwise(a, b, mask_a, mask_b)
        close(without_queries.out.reshape(15, 8), block(a[ia], b[ib], mask_a[ia], mask_b[ib]).out)
        ia, ib = torch.tensor([2, 0, 0, 1, 2, 2]), torch.tensor([4, 4, 1, 0, 2, 3])
        indexed = block.indexed(a, b, ia, ib, mask_a, mask_b, qa, qb)
        flat = block(a[ia], b[ib], mask_a[ia], mask_b[ib], qa[ia], qb[ib])
        close(indexed.out, flat.out)
        close(indexed.out_b, flat.out_b)
        close(indexed.weights["b"], flat.weights["b"])


# ------------------------------------------------------------------------- cross-modal transformer


def test_cross_modal_block_follows_cmbf_layer_order():
    torch.manual_seed(0)
    block = CrossModalTransformer(8, num_heads=2).eval()
    a, b = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    out = block(a, b)
    stream = block.stream_a
    crossed, _ = stream.cross(a, b)  # cross-attention a -> b
    h = stream.norm_attention(crossed + stream.self_attention(crossed, crossed)[0])  # self-attention
    close(out.out, stream.norm_out(h + stream.feed_forward(h)))  # FFN with residual and LayerNorm


def test_cross_modal_block_runs_both_directions():
    torch.manual_seed(0)
    block = CrossModalTransformer(8, num_heads=2).eval()
    a, b = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    base = block(a, b)
    new_b = block(a, b + 1.0)
    new_a = block(a + 1.0, b)
    assert not torch.allclose(new_b.out, base.out), "image tokens see the text"
    assert not torch.allclose(new_a.out_b, base.out_b), "text tokens see the image"


# -------------------------------------------------------------------------- personalised attention


def test_nrpa_personalised_attention_hand_computed():
    torch.manual_seed(0)
    block = PersonalizedAttention(6, 4, hidden_dim=5)
    words, user = torch.randn(2, 7, 6), torch.randn(2, 4)
    q = torch.relu(block.query_proj(user))  # q_w = ReLU(W_1 e_u + b)
    scores = torch.einsum("bh,blh->bl", q, block.item_proj(words))  # q_wᵀ A c_j
    out = block(words, user)
    close(out.weights, torch.softmax(scores, dim=1))
    close(out.out, torch.einsum("bl,bld->bd", out.weights, words))


def test_personalised_attention_word_then_review_level():
    torch.manual_seed(0)
    word_level, review_level = PersonalizedAttention(6, 4), PersonalizedAttention(6, 4)
    words, user = torch.randn(2, 3, 7, 6), torch.randn(2, 4)  # (B, reviews, words, D)
    word_mask = torch.rand(2, 3, 7) > 0.3
    reviews = word_level(words, user, word_mask)
    assert reviews.out.shape == (2, 3, 6) and reviews.weights.shape == (2, 3, 7)
    close(reviews.out[:, 1], word_level(words[:, 1], user, word_mask[:, 1]).out)  # per review
    user_vector = review_level(reviews.out, user)
    assert user_vector.out.shape == (2, 6)


def test_personalised_attention_dot_and_squashed_scores():
    torch.manual_seed(0)
    history, candidate = torch.randn(2, 5, 6), torch.randn(2, 6)
    dot = PersonalizedAttention(6, score="dot")  # MM-Rec: softmax(H c)
    close(dot(history, candidate).weights, torch.softmax(history @ candidate[..., None], dim=1).squeeze(-1))
    squashed = PersonalizedAttention(6, score="additive", squash=True)  # MARank: softmax(σ(s))
    w = squashed(history * 100, candidate).weights
    assert (w.max(1).values / w.min(1).values <= math.e + 1e-4).all()


# ------------------------------------------------------------------------------------------- NOVA


def nova_values(block: NonInvasiveSelfAttention, weights, ids):
    heads = block.attention.num_heads
    values = split_heads(block.attention.value(ids), heads)
    return block.attention.out(merge_heads(weights @ values))


def test_nova_side_information_changes_attention_but_values_come_from_ids():
    torch.manual_seed(0)
    block = NonInvasiveSelfAttention(8, 2, num_heads=2).eval()
    ids, side = torch.randn(2, 5, 8), torch.randn(2, 5, 2, 8)
    first, second = block(ids, side), block(ids, side * 3 + 1)
    assert not torch.allclose(first.weights["attention"], second.weights["attention"])
    for result in (first, second):  # out = Attn(side-aware weights) · (ids W_V) W_O, nothing else
        close(result.out, nova_values(block, result.weights["attention"], ids))


def test_nova_same_attention_map_means_same_output_whatever_the_side_info():
    torch.manual_seed(0)
    block = NonInvasiveSelfAttention(8, 2, fusor="add").eval()
    ids, side = torch.randn(2, 5, 8), torch.randn(2, 5, 2, 8)
    shifted = side.clone()
    shifted[:, :, 0] += 5.0
    shifted[:, :, 1] -= 5.0  # F_add(ids, side) is unchanged, so the attention map is identical
    first, second = block(ids, side), block(ids, shifted)
    close(second.weights["attention"], first.weights["attention"])
    close(second.out, first.out)
    other_ids = block(ids + 1.0, side)  # the ID branch alone still moves the output
    assert not torch.allclose(other_ids.out, first.out)


def test_nova_causal_and_fusors():
    torch.manual_seed(0)
    ids, side = torch.randn(2, 4, 8), {"category": torch.randn(2, 4, 8), "position": torch.randn(2, 4, 8)}
    for fusor in ("add", "concat", "gating"):
        out = NonInvasiveSelfAttention(8, 2, fusor=fusor, causal=True)(ids, side)
        assert (out.weights["attention"].triu(1) == 0).all()
        assert ("fusion" in out.weights) == (fusor == "gating")


# ---------------------------------------------------------------------------------------- MGAT


def test_gated_graph_attention_hand_computed():
    torch.manual_seed(0)
    conv = GatedGraphAttentionConv(4, 3, bias=False, normalize=False)
    x = torch.randn(4, 4) * 4  # scores large enough for the degree gate to matter
    # node 0 receives from 1, 2, 3; node 1 receives from 0 and 2 (so sources have degrees 2, 1, 2, 1)
    edges = torch.tensor([[1, 2, 3, 0, 2, 0], [0, 0, 0, 1, 1, 2]])
    out = conv(x, edges)
    h = conv.lin(x)
    deg = torch.tensor([2.0, 1.0, 2.0, 1.0])  # out-degree of each source node
    s = (h[edges[1]] * nn.functional.leaky_relu(h[edges[0]])).sum(-1)
    e = s * torch.sigmoid(s / deg[edges[0]].sqrt())
    alpha0 = torch.softmax(e[:3], 0)
    alpha1 = torch.softmax(e[3:5], 0)
    close(out.weights, torch.cat([alpha0, alpha1, torch.ones(1)]))
    close(out.out[0], (alpha0[:, None] * h[[1, 2, 3]]).sum(0))
    close(out.out[3], torch.zeros(3))  # no neighbours, no bias


def test_gated_scores_pure_function():
    x_i, x_j = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, -1.0]])
    s = 2.0  # <x_i, LeakyReLU(x_j)> = 1 * 2 + 0 * (-0.01)
    expected = s * torch.sigmoid(torch.tensor([s / 2.0]))  # deg_j = 4 -> gate σ(s / sqrt(4))
    close(gated_scores(x_i, x_j, torch.tensor([4.0])), expected)


def test_gated_graph_attention_sums_to_one_per_target_and_normalises():
    torch.manual_seed(0)
    conv = GatedGraphAttentionConv(4, 3)
    x = torch.randn(6, 4)
    edges = torch.randint(0, 6, (2, 20))
    out = conv(x, edges)
    keep = edges[0] != edges[1]
    sums = torch.zeros(6).index_add_(0, edges[1][keep], out.weights[keep])
    has = torch.zeros(6, dtype=torch.bool)
    has[edges[1][keep]] = True
    close(sums[has], torch.ones(int(has.sum())))
    close(out.out[has].norm(dim=-1), torch.ones(int(has.sum())))
    bipartite = conv((torch.randn(5, 4), torch.randn(2, 4)), torch.tensor([[0, 0, 4], [0, 1, 1]]))
    close(bipartite.weights[0], torch.tensor(1.0))  # 0 -> 0 is a real edge between two node sets
    assert bipartite.out.shape == (2, 3)


# -------------------------------------------------------------------------------------- MKGformer


def test_prefix_guided_attention_attends_over_text_prefix():
    torch.manual_seed(0)
    block = PrefixGuidedAttention(8, prefix_dim=6, num_heads=2).eval()
    vision, text = torch.randn(2, 4, 8), torch.randn(2, 3, 6)
    out = block(vision, text)
    assert out.weights.shape == (2, 2, 4, 7)
    assert not torch.allclose(block(vision, text + 1).out, out.out), "the text prefix guides vision"
    projected = (split_heads(block.prefix_key(text), 2), split_heads(block.prefix_value(text), 2))
    close(block(vision, projected).out, out.out)  # keys/values may come from the text layer
    no_text = block(vision, text, prefix_mask=torch.zeros(2, 3, dtype=torch.bool))
    q, k, v = (split_heads(f(vision), 2) for f in (block.query, block.key, block.value))
    plain = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1) @ v  # plain self-attention, d = 4
    close(no_text.out, block.out(merge_heads(plain)))


def test_correlation_aware_fusion_hand_computed():
    torch.manual_seed(0)
    block = CorrelationAwareFusion(8, hidden_dim=16).eval()
    text, vision = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    out = block(text, vision)
    attn = torch.softmax(text @ vision.transpose(1, 2), dim=-1)  # S = H_t H_vᵀ, softmax over patches
    hidden = block.act(block.inner(text) + block.fusion_inner(attn @ vision))
    close(out.weights, attn)
    close(out.out, block.norm(text + block.outer(hidden)))
    blind = block(text, vision, vision_mask=torch.zeros(2, 5, dtype=torch.bool))
    close(blind.out, block.norm(text + block.outer(block.act(block.inner(text)))))


# ----------------------------------------------------------------------------------------- MARank


def test_multi_order_output_k_uses_kth_order_residuals():
    torch.manual_seed(0)
    block = MultiOrderAttention(8, num_orders=2).eval()
    items, user = torch.randn(2, 5, 8), torch.randn(2, 8)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    orders, weights, _ = block.order_outputs(items, user, mask)
    e, u = items, user
    for k in range(3):
        if k > 0:
            e = torch.relu(block.item_layers[k - 1](e) + e)  # e^k = ReLU(W e^{k-1} + b + e^{k-1})
            u = torch.relu(block.user_layers[k - 1](u) + u)
        alpha = torch.softmax(block.item_attention[k](e, u).masked_fill(~mask, -1e9), dim=1)
        close(weights[:, k], alpha)
        expected = (alpha[..., None] * e).sum(1)
        if k == 0:
            expected = expected + items[[0, 1], [4, 2]]  # + the last valid item
        close(orders[:, k], expected)
    with torch.no_grad():
        block.item_layers[1].weight.add_(1.0)  # only order 2 depends on the second residual layer
    changed, _, _ = block.order_outputs(items, user, mask)
    close(changed[:, :2], orders[:, :2])
    assert not torch.allclose(changed[:, 2], orders[:, 2])


def test_multi_order_attention_pools_the_orders():
    torch.manual_seed(0)
    block = MultiOrderAttention(8, num_orders=3).eval()
    items, user = torch.randn(2, 5, 8), torch.randn(2, 8)
    out = block(items, user)
    orders, _, _ = block.order_outputs(items, user)
    assert out.weights["orders"].shape == (2, 4)
    close(out.out, torch.einsum("bk,bkd->bd", out.weights["orders"], orders))


def test_multi_order_windows_equal_the_block_run_on_each_window_cut_out():
    """Sliding windows share the item pass; each window's output must be the block on that window."""
    torch.manual_seed(0)
    block = MultiOrderAttention(8, num_orders=2).eval()
    items, users = torch.randn(2, 6, 8), torch.randn(2, 8)
    mask = torch.tensor([[False, False, True, True, True, True], [True] * 6])
    ends = torch.tensor([[False, False, True, False, True, True], [False, True, False, False, False, True]])
    got = block(items, users, mask, window=3, ends=ends)
    assert got.out.shape == (5, 8) and got.weights["items"].shape == (5, 3, 3)
    for row, (b, t) in enumerate(ends.nonzero().tolist()):
        first = max(t - 2, 0)
        cut = block(items[b : b + 1, first : t + 1], users[b : b + 1], mask[b : b + 1, first : t + 1])
        close(got.out[row], cut.out[0])
        close(got.weights["orders"][row], cut.weights["orders"][0])
        close(got.weights["items"][row, :, 3 - (t + 1 - first) :], cut.weights["items"][0])  # left-padded
    # row 0 slot 2 reads slots 0..2, of which only slot 2 is real: it gets all the weight
    close(got.weights["items"][0, 0], torch.tensor([0.0, 0.0, 1.0]))


# ------------------------------------------------------------------------------------------ VLSNR


def test_attentional_gru_zero_attention_keeps_the_state():
    torch.manual_seed(0)
    gru = AttentionalGRU(6, 5)
    h0 = torch.randn(2, 5)
    out = gru(torch.randn(2, 4, 6), attention=torch.zeros(2, 4), hidden=h0)
    close(out.out, h0)


def test_attentional_gru_with_full_attention_is_a_plain_gru():
    torch.manual_seed(0)
    gru, cell = AttentionalGRU(6, 5), nn.GRUCell(6, 5)
    # torch's update gate z keeps the old state (h' = (1 - z) n + z h); AUGRU's u = 1 - z
    flip = torch.cat([torch.ones(5), -torch.ones(5), torch.ones(5)])
    with torch.no_grad():
        gru.input_gates.weight.copy_(cell.weight_ih * flip[:, None])
        gru.input_gates.bias.copy_(cell.bias_ih * flip)
        gru.hidden_gates.weight.copy_(cell.weight_hh * flip[:, None])
        gru.hidden_gates.bias.copy_(cell.bias_hh * flip)
    x = torch.randn(2, 4, 6)
    h = torch.zeros(2, 5)
    for t in range(4):
        h = cell(x[:, t], h)
    close(gru(x, attention=torch.ones(2, 4)).out, h)


def test_attentional_gru_padding_equals_truncation():
    torch.manual_seed(0)
    gru = AttentionalGRU(6, 5).eval()
    x, q = torch.randn(2, 5, 6), torch.randn(2, 6)
    mask = torch.tensor([[True, True, True, False, False]] * 2)
    close(gru(x, q, mask).out, gru(x[:, :3], q).out)
