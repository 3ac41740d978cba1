"""nn layers: float64 gradchecks, parity with PyTorch (same weights in, forward and every
parameter gradient out), initializations, bad ids, dropout, positional encodings."""
import math

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import nn
from tinygrad_llm.testing import gradcheck

rng = np.random.default_rng(0)


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check_module(module, *inputs):
    """gradcheck of module(*inputs) w.r.t. the float inputs and every parameter (float64)."""
    module.double()
    slots = [(m, name) for _, m in module.named_modules() for name, p in m._parameters.items()
             if p is not None]
    n_in = len(inputs)

    def fn(*args):  # the parameters are swapped for the checked leaves
        for (m, name), a in zip(slots, args[n_in:]):
            m._parameters[name] = a
        return module(*args[:n_in])

    leaves = [leaf(x) if np.asarray(x).dtype.kind == "f" else x for x in inputs]
    return gradcheck(fn, leaves + [leaf(m._parameters[n].data.copy()) for m, n in slots])


def torch_parity(ours, theirs, inputs, torch, atol=1e-10):
    """Copy theirs' weights into ours, run both in float64, compare outputs and gradients."""
    theirs.double()
    ours.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    t_in = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in inputs]
    o_in = [leaf(x) if x.dtype.kind == "f" else x for x in inputs]
    t_out, o_out = theirs(*t_in), ours(*o_in)
    np.testing.assert_allclose(o_out.data, t_out.detach().numpy(), atol=atol)
    g = rng.standard_normal(o_out.shape)
    t_out.backward(torch.tensor(g))
    o_out.backward(g)
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.data, p.grad.numpy(), atol=atol,
                                   err_msg=name)
    for a, b in zip(o_in, t_in):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad.data, b.grad.numpy(), atol=atol)


# ----- gradchecks ----------------------------------------------------------------------------

def test_linear_gradcheck():
    assert check_module(nn.Linear(3, 2), rng.standard_normal((2, 2, 3)))
    assert check_module(nn.Linear(3, 2, bias=False), rng.standard_normal((4, 3)))


def test_layer_norm_gradcheck():
    x = rng.standard_normal((3, 4)) + np.arange(4)
    assert check_module(nn.LayerNorm(4), x)
    assert check_module(nn.LayerNorm((3, 4)), rng.standard_normal((2, 3, 4)))
    ln = nn.LayerNorm(4, elementwise_affine=False).double()
    assert list(ln.parameters()) == []
    assert gradcheck(ln, [leaf(x)])


def test_embedding_gradcheck():
    # (no padding_idx here: its row is used forward but gets no gradient, by definition)
    assert check_module(nn.Embedding(5, 3), np.array([[0, 1, 4], [4, 4, 2]]))


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.GELU(), nn.GELU("tanh"), nn.Tanh(),
                                   nn.Sigmoid(), nn.Softmax(0), nn.Flatten(), nn.Identity()])
def test_activation_modules_gradcheck(layer):
    x = rng.standard_normal((3, 2, 2))
    x[np.abs(x) < 1e-2] = 0.5  # away from relu's kink
    assert gradcheck(layer, [leaf(x)])


# ----- parity with PyTorch -------------------------------------------------------------------

@pytest.mark.oracle
def test_linear_embedding_layernorm_match_torch():
    torch = pytest.importorskip("torch")
    torch_parity(nn.Linear(4, 3), torch.nn.Linear(4, 3), [rng.standard_normal((2, 5, 4))],
                 torch)
    torch_parity(nn.Linear(4, 3, bias=False), torch.nn.Linear(4, 3, bias=False),
                 [rng.standard_normal((6, 4))], torch)
    torch_parity(nn.Embedding(7, 3, padding_idx=2), torch.nn.Embedding(7, 3, padding_idx=2),
                 [np.array([[0, 2, 6], [2, 2, 1]])], torch)
    t_ln = torch.nn.LayerNorm((2, 4), eps=1e-3)
    with torch.no_grad():
        t_ln.weight.normal_()
        t_ln.bias.normal_()
    torch_parity(nn.LayerNorm((2, 4), eps=1e-3), t_ln, [rng.standard_normal((3, 2, 4))], torch)


@pytest.mark.oracle
def test_layer_norm_constant_row_matches_torch():
    torch = pytest.importorskip("torch")
    t_ln = torch.nn.LayerNorm(5)
    with torch.no_grad():
        t_ln.weight.normal_()
    x = np.full((2, 5), 7.0)
    torch_parity(nn.LayerNorm(5), t_ln, [x], torch, atol=1e-6)


@pytest.mark.oracle
def test_gelu_matches_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(50) * 3
    for approximate in ("none", "tanh"):
        ours = nn.GELU(approximate)(tg.tensor(x)).data
        theirs = torch.nn.GELU(approximate)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(ours, theirs, atol=1e-12)


# ----- initialization ------------------------------------------------------------------------

def test_linear_init_is_pytorch_default_and_seeded():
    a = nn.Linear(400, 300, generator=tg.Generator(1))
    b = nn.Linear(400, 300, generator=tg.Generator(1))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    bound = 1 / math.sqrt(400)
    assert a.weight.dtype == np.float32 and a.weight.shape == (300, 400)
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.weight.data).max() > 0.99 * bound
    assert abs(a.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound   # U(-b, b)
    assert np.abs(a.bias.data).max() <= bound


def test_init_functions():
    w = nn.Parameter(np.zeros((200, 100)))
    g = tg.Generator(0)
    nn.init.xavier_uniform_(w, generator=g)
    a = math.sqrt(6 / 300)
    assert np.abs(w.data).max() <= a and abs(w.data.std() - a / math.sqrt(3)) < 0.02 * a
    nn.init.xavier_normal_(w, generator=g)
    assert abs(w.data.std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
    assert abs(w.data.std() - math.sqrt(2 / 100)) < 0.02 * math.sqrt(2 / 100)
    nn.init.kaiming_uniform_(w, a=0, mode="fan_out", nonlinearity="relu", generator=g)
    assert np.abs(w.data).max() <= math.sqrt(6 / 200)
    nn.init.normal_(w, 1.0, 0.5, generator=g)
    assert abs(w.data.mean() - 1) < 0.02
    nn.init.trunc_normal_(w, std=1.0, a=-1.0, b=1.0, generator=g)
    assert np.abs(w.data).max() <= 1.0
    nn.init.zeros_(w)
    assert np.all(w.data == 0)
    nn.init.ones_(w)
    assert np.all(w.data == 1)
    assert nn.init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))


def test_embedding_init_and_padding_row():
    e = nn.Embedding(1000, 8, padding_idx=-1, generator=tg.Generator(0))
    assert e.padding_idx == 999 and np.all(e.weight.data[999] == 0)
    assert abs(e.weight.data.std() - 1) < 0.05


# ----- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-1, 5, 99])
def test_embedding_bad_ids_raise_index_error(bad):
    e = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=rf"id {bad} .*num_embeddings=5"):
        e(np.array([[0, bad]]))


def test_embedding_float_ids_raise_type_error():
    with pytest.raises(TypeError, match="integers"):
        nn.Embedding(5, 2)(np.array([0.0, 1.0]))
    with pytest.raises(TypeError):
        nn.Embedding(5, 2)(tg.tensor([1.0]))


# ----- dropout -------------------------------------------------------------------------------

def test_dropout_module_seeded_and_identity_in_eval():
    x = tg.ones(200, 100)
    a = nn.Dropout(0.3, generator=tg.Generator(5))(x).data
    b = nn.Dropout(0.3, generator=tg.Generator(5))(x).data
    np.testing.assert_array_equal(a, b)
    assert abs((a == 0).mean() - 0.3) < 0.02
    np.testing.assert_allclose(a[a != 0], 1 / 0.7, rtol=1e-6)
    d = nn.Dropout(0.3).eval()
    assert d(x) is x
    with pytest.raises(ValueError):
        nn.Dropout(-0.1)


# ----- positional encodings ------------------------------------------------------------------

def test_sinusoidal_encoding_is_vaswani_formula():
    d, t = 6, 7
    pe = nn.sinusoidal_position_encoding(t, d, np.float64)
    for pos in range(t):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-12)
            assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-12)
    assert nn.sinusoidal_position_encoding(4, 5).shape == (4, 5)       # odd d_model
    enc = nn.SinusoidalPositionalEncoding(d, max_len=10, dtype=np.float64)
    x = rng.standard_normal((2, t, d))
    np.testing.assert_allclose(enc(tg.tensor(x)).data, x + pe)
    assert list(enc.state_dict()) == []                # a fixed table is not saved
    with pytest.raises(ValueError, match="max_len"):
        enc(tg.zeros(1, 11, d))


def test_positionwise_feed_forward_gradcheck():
    ffn = nn.PositionwiseFeedForward(3, 5, activation="gelu")
    assert [n for n, _ in ffn.named_parameters()] == ["linear1.weight", "linear1.bias",
                                                      "linear2.weight", "linear2.bias"]
    assert check_module(ffn, rng.standard_normal((2, 2, 3)))


def test_learned_positional_embedding_gradcheck():
    pos = nn.LearnedPositionalEmbedding(5, 3)
    assert [n for n, _ in pos.named_parameters()] == ["weight"]
    assert check_module(pos, rng.standard_normal((2, 4, 3)))
