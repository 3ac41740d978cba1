"""LSTM: the fused whole-sequence Function (hand-written BPTT) against finite differences, its
composite twin (LSTMCell's primitive ops stepped in Python) and torch.nn.LSTM; numerics with
saturated gates; the module API (PyTorch's parameter names, init, dropout, errors)."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm.nn.rnn import LSTM, LSTMCell
from tinygrad_llm.ops.lstm import lstm_cell, lstm_layer, lstm_layer_composite
from tinygrad_llm.testing import gradcheck


def leaf(a, dtype=np.float64):
    return tg.tensor(np.asarray(a, dtype=dtype), requires_grad=True)


def layer_inputs(rng, T, B, n_in, H, bias=True, scale=1.0):
    arrays = [rng.standard_normal((T, B, n_in)) * scale, rng.standard_normal((B, H)),
              rng.standard_normal((B, H)), rng.standard_normal((4 * H, n_in)) * 0.7,
              rng.standard_normal((4 * H, H)) * 0.7]
    if bias:
        arrays += [rng.standard_normal(4 * H) * 0.5, rng.standard_normal(4 * H) * 0.5]
    return arrays


# ----- the fused Function against finite differences ------------------------------------------

@pytest.mark.parametrize("impl", ["cpu", "ref"])
@pytest.mark.parametrize("T,B,n_in,H,bias", [(1, 1, 1, 1, True), (3, 2, 2, 3, True),
                                          (2, 3, 3, 2, False)])
def test_lstm_layer_gradcheck(monkeypatch, impl, T, B, n_in, H, bias):
    if impl == "ref":
        monkeypatch.setenv("TINYGRAD_LLM_KERNELS", "ref")
    rng = np.random.default_rng(T * 100 + H)
    inputs = [leaf(a) for a in layer_inputs(rng, T, B, n_in, H, bias)]
    assert gradcheck(lambda *a: lstm_layer(*a), inputs)


@given(st.integers(1, 3), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2 ** 31 - 1))
def test_lstm_layer_gradcheck_property(T, B, n_in, H, seed):
    inputs = [leaf(a) for a in layer_inputs(np.random.default_rng(seed), T, B, n_in, H)]
    assert gradcheck(lambda *a: lstm_layer(*a), inputs)


def test_lstm_cell_gradcheck():
    rng = np.random.default_rng(1)
    x, h, c, w_ih, w_hh, b_ih, b_hh = layer_inputs(rng, 1, 2, 3, 2)
    assert gradcheck(lstm_cell, [leaf(a) for a in (x[0], h, c, w_ih, w_hh, b_ih, b_hh)])


def test_lstm_cell_module_gradcheck():
    cell = LSTMCell(3, 2, dtype=np.float64, generator=tg.Generator(0))
    rng = np.random.default_rng(2)
    x, h, c = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((2, 2))), leaf(
        rng.standard_normal((2, 2)))
    params = list(cell.parameters())
    assert gradcheck(lambda x, h, c, *_: cell(x, (h, c)), [x, h, c] + params)


# ----- fused == composite twin ----------------------------------------------------------------

def _values_and_grads(fn, arrays, seed=0):
    inputs = [leaf(a) for a in arrays]
    outs = fn(*inputs)
    rng = np.random.default_rng(seed)
    loss = sum((o * tg.tensor(rng.standard_normal(o.shape))).sum() for o in outs)
    loss.backward()
    return [o.data for o in outs], [t.grad.data for t in inputs]


@pytest.mark.parametrize("T,B,n_in,H,bias", [(1, 1, 1, 1, True), (4, 3, 5, 2, True),
                                          (7, 2, 3, 4, False)])
def test_fused_layer_matches_composite_twin(T, B, n_in, H, bias):
    arrays = layer_inputs(np.random.default_rng(T), T, B, n_in, H, bias)
    fused = _values_and_grads(lstm_layer, arrays)
    twin = _values_and_grads(lstm_layer_composite, arrays)
    for a, b in zip(fused[0] + fused[1], twin[0] + twin[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_batch_split_across_threads_matches_composite(monkeypatch):
    """The numba time loops give each thread a chunk of batch rows (uneven chunks here)."""
    import tinygrad_llm.kernels.lstm as lstm_ops
    monkeypatch.setattr(lstm_ops, "MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(lstm_ops, "MIN_WORK_PER_CALL", 0)
    arrays = layer_inputs(np.random.default_rng(9), 3, 5, 2, 3)
    fused = _values_and_grads(lstm_layer, arrays)
    twin = _values_and_grads(lstm_layer_composite, arrays)
    for a, b in zip(fused[0] + fused[1], twin[0] + twin[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lstm_module_fused_matches_unfused():
    model = LSTM(3, 4, num_layers=2, dtype=np.float64, generator=tg.Generator(3))
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    results = []
    for fused in (True, False):
        model.zero_grad()
        xt = leaf(x)
        out, (h, c) = model(xt, fused=fused)
        ((out * out).sum() + h.sum() + (c * c).sum()).backward()
        results.append([out.data, h.data, c.data, xt.grad.data]
                       + [p.grad.data for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_float32_kernel_close_to_float64():
    """The float32 numba kernel (polynomial exp, Taylor tanh near 0) against float64."""
    arrays = layer_inputs(np.random.default_rng(5), 20, 4, 8, 16)
    arrays[0][0, 0, :] = 1e-4  # tiny pre-activations: the Taylor branch of tanh
    ref = _values_and_grads(lstm_layer, arrays)
    f32 = [leaf(a, np.float32) for a in arrays]
    outs = lstm_layer(*f32)
    rng = np.random.default_rng(0)
    sum((o * tg.tensor(rng.standard_normal(o.shape), dtype=np.float32)).sum()
        for o in outs).backward()
    for a, b in zip([o.data for o in outs] + [t.grad.data for t in f32], ref[0] + ref[1]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * np.abs(b).max())


# ----- parity with torch.nn.LSTM --------------------------------------------------------------

def _torch_copy(torch, model, **kwargs):
    ref = torch.nn.LSTM(model.input_size, model.hidden_size, model.num_layers, bias=model.bias,
                        batch_first=model.batch_first, **kwargs).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            getattr(ref, name).copy_(torch.from_numpy(p.data))
    return ref


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("given_state", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_matches_torch(batch_first, given_state, bias):
    torch = pytest.importorskip("torch")
    T, B, n_in, H, L = 6, 3, 4, 5, 2
    model = LSTM(n_in, H, num_layers=L, bias=bias, batch_first=batch_first, dtype=np.float64,
                 generator=tg.Generator(7))
    ref = _torch_copy(torch, model)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((B, T, n_in) if batch_first else (T, B, n_in))
    h0, c0 = rng.standard_normal((L, B, H)), rng.standard_normal((L, B, H))
    g_out, g_h, g_c = (rng.standard_normal(s) for s in (
        (B, T, H) if batch_first else (T, B, H), (L, B, H), (L, B, H)))

    ours = [leaf(a) for a in (x, h0, c0)]
    out, (h, c) = model(ours[0], (ours[1], ours[2]) if given_state else None)
    ((out * tg.tensor(g_out)).sum() + (h * tg.tensor(g_h)).sum()
     + (c * tg.tensor(g_c)).sum()).backward()

    theirs = [torch.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    out_t, (h_t, c_t) = ref(theirs[0], (theirs[1], theirs[2]) if given_state else None)
    ((out_t * torch.from_numpy(g_out)).sum() + (h_t * torch.from_numpy(g_h)).sum()
     + (c_t * torch.from_numpy(g_c)).sum()).backward()

    for a, b in ((out, out_t), (h, h_t), (c, c_t)):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-5, atol=1e-8)
    checked = ours if given_state else ours[:1]
    for a, b in zip(checked, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-5, atol=1e-8)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, getattr(ref, name).grad.numpy(), rtol=1e-5,
                                   atol=1e-8, err_msg=name)


def test_lstm_unbatched_and_cell_match_torch():
    torch = pytest.importorskip("torch")
    model = LSTM(3, 2, dtype=np.float64, generator=tg.Generator(1))
    ref = _torch_copy(torch, model)
    x = np.random.default_rng(0).standard_normal((4, 3))            # (T, n_in): no batch axis
    out, (h, c) = model(tg.tensor(x))
    out_t, (h_t, c_t) = ref(torch.from_numpy(x))
    assert out.shape == (4, 2) and h.shape == (1, 2)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(c.data, c_t.detach().numpy(), rtol=1e-10)

    cell = LSTMCell(3, 2, dtype=np.float64, generator=tg.Generator(2))
    cell_t = torch.nn.LSTMCell(3, 2).double()
    with torch.no_grad():
        for name, p in cell.named_parameters():
            getattr(cell_t, name).copy_(torch.from_numpy(p.data))
    h1, c1 = cell(tg.tensor(x[:2]))
    h1_t, c1_t = cell_t(torch.from_numpy(x[:2]))
    np.testing.assert_allclose(h1.data, h1_t.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(c1.data, c1_t.detach().numpy(), rtol=1e-10)


# ----- numerics -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_gates_stay_finite(dtype):
    """Inputs of 1e4 saturate every gate: sigmoid -> 0 or 1, tanh -> +-1, derivatives -> 0."""
    rng = np.random.default_rng(0)
    model = LSTM(4, 3, num_layers=2, dtype=dtype, generator=tg.Generator(0))
    x = leaf(rng.choice([-1e4, 1e4], size=(5, 2, 4)), dtype)
    out, (h, c) = model(x)
    (out.sum() + c.sum()).backward()
    for t in [out, h, c, x.grad] + [p.grad for p in model.parameters()]:
        assert np.all(np.isfinite(t.data))
    assert np.all(np.abs(out.data) <= 1)


# ----- the module -----------------------------------------------------------------------------

def test_parameter_names_shapes_and_init_match_pytorch():
    model = LSTM(5, 4, num_layers=2, generator=tg.Generator(0))
    names = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    assert names == [("weight_ih_l0", (16, 5)), ("weight_hh_l0", (16, 4)), ("bias_ih_l0", (16,)),
                     ("bias_hh_l0", (16,)), ("weight_ih_l1", (16, 4)), ("weight_hh_l1", (16, 4)),
                     ("bias_ih_l1", (16,)), ("bias_hh_l1", (16,))]
    bound = 1 / math.sqrt(4)
    for _, p in model.named_parameters():
        assert p.dtype == np.float32 and np.all(np.abs(p.data) <= bound)
    again = LSTM(5, 4, num_layers=2, generator=tg.Generator(0))
    for a, b in zip(model.parameters(), again.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    no_bias = LSTM(5, 4, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert list(model.state_dict()) == [n for n, _ in names]


def test_dropout_between_layers_train_only_and_seeded():
    x = tg.tensor(np.random.default_rng(0).standard_normal((4, 2, 3)), dtype=np.float64)

    def run(train, seed):
        model = LSTM(3, 5, num_layers=2, dropout=0.5, dtype=np.float64,
                     generator=tg.Generator(seed))
        model.train(train)
        return model(x)[0].data

    np.testing.assert_array_equal(run(True, 1), run(True, 1))       # seeded: reproducible
    assert not np.allclose(run(True, 1), run(False, 1))              # masks act in training
    plain = LSTM(3, 5, num_layers=2, dtype=np.float64, generator=tg.Generator(1))
    np.testing.assert_allclose(run(False, 1), plain(x)[0].data)      # eval: no dropout


def test_bad_input_errors():
    with pytest.raises(NotImplementedError):
        LSTM(3, 4, bidirectional=True)
    model = LSTM(3, 4)
    with pytest.raises(ValueError, match=r"\(5, 2, 7\)"):
        model(tg.zeros(5, 2, 7))
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 3, 4\), expected \(1, 2, 4\)"):
        model(tg.zeros(5, 2, 3), (tg.zeros(1, 3, 4), tg.zeros(1, 3, 4)))
    with pytest.raises(ValueError, match=r"got \(3, 4\)"):
        LSTMCell(3, 4)(tg.zeros(3, 4))
    with pytest.raises(TypeError, match="dtype"):
        lstm_layer(tg.zeros(2, 1, 3, dtype=np.float64), tg.zeros(1, 4), tg.zeros(1, 4),
                   tg.zeros(16, 3), tg.zeros(16, 4))


def test_graph_reports_optimizer_step_before_backward():
    from tinygrad_llm import optim
    model = LSTM(2, 3, generator=tg.Generator(0))
    out, _ = model(tg.randn(4, 2, 2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = tg.zeros(*p.shape)
    opt.step()                                # changes the weights saved by the forward pass
    with pytest.raises(RuntimeError, match="in-place"):
        out.sum().backward()


def test_graph_reports_in_place_change_of_output():
    model = LSTM(2, 3, generator=tg.Generator(0))
    x = tg.randn(3, 1, 2, requires_grad=True)
    out, _ = model(x)
    with tg.no_grad():
        out.mul_(2)
    with pytest.raises(RuntimeError, match="in-place"):
        out.sum().backward()
