"""MultiheadAttention and the Transformer layers: PyTorch parity (same weights, float64,
forward and every parameter gradient), the seed-003 equations, gradchecks, masks."""
import numpy as np
import pytest

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm import nn
from tinygrad_llm.testing import gradcheck

rng = np.random.default_rng(1)
E, H = 8, 2


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def copy_weights(ours, theirs):
    theirs.double()
    ours.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def compare(ours, theirs, o_out, t_out, o_in, t_in, torch, atol=1e-10):
    """Forward values, then the gradients of every parameter and input for one upstream g."""
    np.testing.assert_allclose(o_out.data, t_out.detach().numpy(), atol=atol)
    g = rng.standard_normal(o_out.shape)
    o_out.backward(g)
    t_out.backward(torch.tensor(g))
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(mine[name].grad.data, p.grad.numpy(), atol=atol,
                                   err_msg=name)
    for a, b in zip(o_in, t_in):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), atol=atol)


def inputs(*shapes, torch):
    arrays = [rng.standard_normal(s) for s in shapes]
    return [leaf(a) for a in arrays], [torch.tensor(a, requires_grad=True) for a in arrays]


# ----- MultiheadAttention --------------------------------------------------------------------

MHA_CASES = ["self", "causal", "bool_mask", "float_mask_3d", "key_padding", "float_padding",
             "cross", "kdim_vdim", "weights", "weights_per_head", "seq_first", "unbatched"]


@pytest.mark.oracle
@pytest.mark.parametrize("case", MHA_CASES)
def test_multihead_attention_matches_torch(case):
    torch = pytest.importorskip("torch")
    b, tq, tk = 2, 4, (5 if case in ("cross", "kdim_vdim") else 4)
    kdim = vdim = None
    if case == "kdim_vdim":
        kdim, vdim = 3, 5
    batch_first = case != "seq_first"
    theirs = torch.nn.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, batch_first=batch_first)
    ours = nn.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, batch_first=batch_first)
    with torch.no_grad():  # PyTorch starts the biases at 0: make them count
        for name, p in theirs.named_parameters():
            if "bias" in name:
                p.normal_()
    copy_weights(ours, theirs)
    q_shape, k_shape, v_shape = (b, tq, E), (b, tk, kdim or E), (b, tk, vdim or E)
    if case == "seq_first":
        q_shape, k_shape, v_shape = (tq, b, E), (tk, b, E), (tk, b, E)
    if case == "unbatched":
        q_shape, k_shape, v_shape = (tq, E), (tk, E), (tk, E)
    if case in ("cross", "kdim_vdim"):
        o_in, t_in = inputs(q_shape, k_shape, v_shape, torch=torch)
        o_args, t_args = o_in, t_in
    else:  # self-attention: one tensor as query, key and value
        o_in, t_in = inputs(q_shape, torch=torch)
        o_args, t_args = o_in * 3, t_in * 3
    o_kw, t_kw = {}, {}
    if case == "causal":
        causal = nn.Transformer.generate_square_subsequent_mask(tq, dtype="float64")
        o_kw = dict(is_causal=True)            # ours needs no mask
        t_kw = dict(is_causal=True, attn_mask=torch.tensor(causal.data))
    elif case == "bool_mask":
        m = rng.random((tq, tk)) < 0.4         # True = not allowed (MHA convention)
        m[:, 0] = False
        o_kw, t_kw = dict(attn_mask=m), dict(attn_mask=torch.tensor(m))
    elif case == "float_mask_3d":
        m = rng.standard_normal((b * H, tq, tk))
        o_kw, t_kw = dict(attn_mask=m), dict(attn_mask=torch.tensor(m))
    elif case == "key_padding":
        kpm = np.zeros((b, tk), bool)
        kpm[1, 2:] = True
        o_kw, t_kw = dict(key_padding_mask=kpm), dict(key_padding_mask=torch.tensor(kpm))
    elif case == "float_padding":
        kpm = rng.standard_normal((b, tk))
        o_kw, t_kw = dict(key_padding_mask=kpm), dict(key_padding_mask=torch.tensor(kpm))
    want = case.startswith("weights")
    avg = case != "weights_per_head"
    o_out, o_w = ours(*o_args, need_weights=want, average_attn_weights=avg, **o_kw)
    t_out, t_w = theirs(*t_args, need_weights=want, average_attn_weights=avg, **t_kw)
    if want:
        np.testing.assert_allclose(o_w.data, t_w.detach().numpy(), atol=1e-10)
    else:
        assert o_w is None
    compare(ours, theirs, o_out, t_out, o_in, t_in, torch)


def test_multihead_attention_state_dict_names():
    names = list(nn.MultiheadAttention(E, H).state_dict())
    assert names == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    names = list(nn.MultiheadAttention(E, H, kdim=3, vdim=5, bias=False).state_dict())
    assert names == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"]
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(7, 2)


def test_multihead_attention_gradcheck():
    mha = nn.MultiheadAttention(4, 2).double()
    x = rng.standard_normal((2, 3, 4))
    kpm = np.array([[False, False, True], [False, False, False]])
    assert gradcheck(lambda x: mha(x, x, x, key_padding_mask=kpm, is_causal=True)[0],
                     [leaf(x)], mode="directional", n_directions=4)
    w, b = (leaf(p.data.copy()) for p in (mha.in_proj_weight, mha.in_proj_bias))

    def fn(w, b):  # the parameters are swapped for the checked leaves
        mha._parameters["in_proj_weight"], mha._parameters["in_proj_bias"] = w, b
        return mha(tg.tensor(x), tg.tensor(x[:, :2]), tg.tensor(x[:, :2]))[0]

    assert gradcheck(fn, [w, b], mode="directional", n_directions=4)


@pytest.mark.parametrize("need_weights", [False, True])
def test_mha_fully_padded_sequence_gives_zeros_not_nan(need_weights):
    mha = nn.MultiheadAttention(E, H).double()
    x = leaf(rng.standard_normal((2, 3, E)))
    kpm = np.array([[False, True, False], [True, True, True]])
    out, w = mha(x, x, x, key_padding_mask=kpm, need_weights=need_weights)
    out.sum().backward()
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(x.grad.data))
    bias = mha.out_proj.bias.data            # the attention output is 0, then out_proj adds b
    np.testing.assert_allclose(out.data[1], np.broadcast_to(bias, (3, E)), atol=1e-12)
    if need_weights:
        assert np.all(w.data[1] == 0)


def test_mha_dropout_only_in_training():
    mha = nn.MultiheadAttention(E, H, dropout=0.5, generator=tg.Generator(0))
    x = tg.randn(2, 3, E)
    a, _ = mha(x, x, x)
    b, _ = mha(x, x, x)
    assert not np.allclose(a.data, b.data)
    mha.eval()
    np.testing.assert_array_equal(mha(x, x, x)[0].data, mha(x, x, x)[0].data)


# ----- layers, stacks, the full model --------------------------------------------------------

@pytest.mark.oracle
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch: mixed bool / float mask types
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, activation):
    torch = pytest.importorskip("torch")
    kw = dict(dim_feedforward=12, dropout=0.0, activation=activation, norm_first=norm_first)
    theirs = torch.nn.TransformerEncoderLayer(E, H, batch_first=True, **kw)
    ours = nn.TransformerEncoderLayer(E, H, **kw)
    copy_weights(ours, theirs)
    o_in, t_in = inputs((2, 5, E), torch=torch)
    kpm = np.zeros((2, 5), bool)
    kpm[0, 3:] = True
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype="float64")
    o_out = ours(o_in[0], src_mask=mask, src_key_padding_mask=kpm)
    t_out = theirs(t_in[0], src_mask=torch.tensor(mask.data),
                   src_key_padding_mask=torch.tensor(kpm))
    compare(ours, theirs, o_out, t_out, o_in, t_in, torch)


@pytest.mark.oracle
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch = pytest.importorskip("torch")
    kw = dict(dim_feedforward=12, dropout=0.0, norm_first=norm_first)
    theirs = torch.nn.TransformerDecoderLayer(E, H, batch_first=True, **kw)
    ours = nn.TransformerDecoderLayer(E, H, **kw)
    copy_weights(ours, theirs)
    o_in, t_in = inputs((2, 4, E), (2, 6, E), torch=torch)
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype="float64")
    mem_kpm = np.zeros((2, 6), bool)
    mem_kpm[1, 4:] = True
    o_out = ours(*o_in, tgt_mask=mask, memory_key_padding_mask=mem_kpm, tgt_is_causal=True)
    t_out = theirs(*t_in, tgt_mask=torch.tensor(mask.data), tgt_is_causal=True,
                   memory_key_padding_mask=torch.tensor(mem_kpm))
    compare(ours, theirs, o_out, t_out, o_in, t_in, torch)


@pytest.mark.oracle
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch: mixed mask types, nested tensor
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_matches_torch(norm_first):
    torch = pytest.importorskip("torch")
    kw = dict(d_model=E, nhead=H, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=12, dropout=0.0, norm_first=norm_first)
    theirs = torch.nn.Transformer(batch_first=True, **kw)
    ours = nn.Transformer(**kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)
    o_in, t_in = inputs((2, 5, E), (2, 4, E), torch=torch)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(4, dtype="float64")
    src_kpm = np.zeros((2, 5), bool)
    src_kpm[0, 4] = True
    tgt_kpm = np.zeros((2, 4), bool)
    tgt_kpm[1, 3] = True
    masks = dict(src_key_padding_mask=src_kpm, tgt_key_padding_mask=tgt_kpm,
                 memory_key_padding_mask=src_kpm)
    o_out = ours(*o_in, tgt_mask=tgt_mask, **masks)
    t_out = theirs(*t_in, tgt_mask=torch.tensor(tgt_mask.data),
                   **{k: torch.tensor(v) for k, v in masks.items()})
    compare(ours, theirs, o_out, t_out, o_in, t_in, torch)


def test_encoder_layer_is_seed_003_post_ln():
    """Z = LayerNorm(X + Attention(X)),  H = LayerNorm(Z + FFN(Z))."""
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0).double()
    x = tg.tensor(rng.standard_normal((2, 3, E)))
    z = layer.norm1(x + layer.self_attn(x, x, x)[0])
    h = layer.norm2(z + layer.linear2(F.relu(layer.linear1(z))))
    np.testing.assert_allclose(layer(x).data, h.data, atol=1e-12)


def test_decoder_layer_is_seed_003_with_mask_m():
    """Z = LN(Y + MaskedAttention(Y)), C = LN(Z + CrossAttention(Z, H)), O = LN(C + FFN(C));
    MaskedAttention = softmax(Q K^T / sqrt(d_k) + M) V with M = -inf above the diagonal."""
    layer = nn.TransformerDecoderLayer(E, H, dim_feedforward=16, dropout=0.0).double()
    y, mem = (tg.tensor(rng.standard_normal(s)) for s in ((2, 4, E), (2, 6, E)))
    m = nn.Transformer.generate_square_subsequent_mask(4, dtype="float64")
    assert np.all(np.triu(m.data, 1)[np.triu_indices(4, 1)] == -np.inf)
    assert np.all(np.tril(m.data) == 0)
    sa = layer.self_attn
    q, k, v = (F.linear(y, sa.in_proj_weight[i * E:(i + 1) * E], sa.in_proj_bias[
        i * E:(i + 1) * E]).reshape(2, 4, H, E // H).transpose(1, 2) for i in range(3))
    scores = q @ k.transpose(-2, -1) / np.sqrt(E // H) + m
    masked = sa.out_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 4, E))
    z = layer.norm1(y + masked)
    c = layer.norm2(z + layer.multihead_attn(z, mem, mem)[0])
    o = layer.norm3(c + layer.linear2(F.relu(layer.linear1(c))))
    np.testing.assert_allclose(layer(y, mem, tgt_mask=m).data, o.data, atol=1e-12)
    np.testing.assert_allclose(layer(y, mem, tgt_is_causal=True).data, o.data, atol=1e-12)


def test_stack_clones_are_independent_but_start_equal():
    gen = tg.Generator(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, 16, generator=gen), 3)
    w0, w1 = (enc.layers[i].linear1.weight for i in (0, 1))
    assert w0 is not w1
    np.testing.assert_array_equal(w0.data, w1.data)
    assert len(list(enc.parameters())) == 3 * 12
    # one random stream for all dropout masks (copies of it would repeat the same masks)
    assert enc.layers[0].dropout1.generator is enc.layers[2].dropout1.generator is gen


def test_encoder_layer_gradcheck_directional():
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0,
                                       norm_first=True).double()
    x = leaf(rng.standard_normal((2, 3, 4)))
    assert gradcheck(lambda x: layer(x, is_causal=True), [x], mode="directional")
    # parameters: perturb one weight matrix through a swapped-in leaf
    w = leaf(layer.linear1.weight.data.copy())

    def fn(w):
        layer.linear1._parameters["weight"] = w
        return layer(x.detach())

    assert gradcheck(fn, [w], mode="directional")


def test_decoder_layer_and_transformer_gradcheck_directional():
    dec = nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0).double()
    y, mem = leaf(rng.standard_normal((2, 3, 4))), leaf(rng.standard_normal((2, 5, 4)))
    kpm = np.array([[False] * 4 + [True], [False] * 5])
    assert gradcheck(lambda y, m: dec(y, m, tgt_is_causal=True, memory_key_padding_mask=kpm),
                     [y, mem], mode="directional")
    model = nn.Transformer(4, 2, 1, 1, dim_feedforward=6, dropout=0.0).double()
    assert gradcheck(lambda s, t: model(s, t, tgt_is_causal=True), [mem, y],
                     mode="directional")


def test_transformer_generate_mask_and_bad_input():
    m = nn.Transformer.generate_square_subsequent_mask(3)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m.data, [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])
    model = nn.Transformer(d_model=E, nhead=H, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=8)
    with pytest.raises(ValueError, match="batch size"):
        model(tg.zeros(2, 3, E), tg.zeros(3, 3, E))
    with pytest.raises(ValueError, match="d_model"):
        model(tg.zeros(2, 3, E), tg.zeros(2, 3, E + 1))
