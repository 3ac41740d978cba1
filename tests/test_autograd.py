"""The autograd engine: graph walking, accumulation, grad mode, graph lifetime, misuse errors,
and the documented gradient conventions at kinks and ties."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_llm as tg
import tinygrad_llm.nn  # noqa: F401  (tg.nn)
from tinygrad_llm.autograd import Function


def f64(values, requires_grad=True):
    return tg.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ----- the walk ------------------------------------------------------------------------------

def test_chain_of_20000_ops_has_no_recursion_limit():
    x = f64([1.0])
    y = x
    for _ in range(20000):
        y = y * 1.0001 - 0.00005
    y.sum().backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 20000, rel=1e-9)


def test_reused_tensor_gradients_accumulate():
    x = f64([3.0, -2.0])
    y = x * x + x + x.exp() * x  # x is used five times
    y.sum().backward()
    expected = 2 * x.data + 1 + np.exp(x.data) * (1 + x.data)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_diamond_graph_accumulates_through_both_paths():
    x = f64([0.5])
    a = x.tanh()
    b = a * 2
    c = a * 3
    (b + c).sum().backward()
    assert x.grad.item() == pytest.approx(5 * (1 - np.tanh(0.5) ** 2))


def test_broadcast_gradients_are_reduced_to_each_input_shape():
    s = f64(2.0)                      # 0-d
    row = f64([[1.0, 2.0, 3.0]])      # (1, 3)
    col = f64([[1.0], [2.0]])         # (2, 1)
    (s * row * col).sum().backward()
    assert s.grad.shape == ()
    assert row.grad.shape == (1, 3)
    assert col.grad.shape == (2, 1)
    np.testing.assert_allclose(s.grad.numpy(), (row.data * col.data).sum())
    np.testing.assert_allclose(row.grad.numpy(), [[6.0, 6.0, 6.0]])
    np.testing.assert_allclose(col.grad.numpy(), [[12.0], [12.0]])


def test_grads_accumulate_over_two_backward_calls():
    x = f64([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 + 2 * x.data)


def test_leaf_grad_does_not_alias_another_gradient():
    a, b = f64([1.0]), f64([1.0])
    (a + b).sum().backward()  # Add's backward hands the same array to both inputs
    a.grad.data *= 10
    assert b.grad.item() == 1.0


def test_retain_grad_keeps_an_intermediate_gradient():
    x = f64([1.0, 2.0])
    h = (x * 2).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.data)


def test_gradient_keeps_parameter_dtype_after_promotion():
    w = tg.tensor(np.ones(2, np.float32), requires_grad=True)
    (w * f64([1.0, 2.0], requires_grad=False)).sum().backward()
    assert w.grad.dtype == np.float32


# ----- grad mode -----------------------------------------------------------------------------

def test_no_grad_records_nothing_and_restores_the_mode():
    x = f64([1.0])
    with tg.no_grad():
        y = x * 2
        with tg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    assert tg.is_grad_enabled()


def test_no_grad_as_decorator():
    @tg.no_grad()
    def f(t):
        return t * 2

    assert not f(f64([1.0])).requires_grad
    assert tg.is_grad_enabled()


def test_integer_results_do_not_require_grad():
    x = f64([1.5, 2.5])
    assert not x.long().requires_grad
    assert not x.argmax().requires_grad
    assert not (x > 2).requires_grad


# ----- graph lifetime ------------------------------------------------------------------------

def test_second_backward_raises_and_retain_graph_allows_it():
    x = f64([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_saved_arrays_are_freed_after_backward():
    x = f64(np.ones(1000))
    h = x.exp()
    ref = weakref.ref(h.data)
    loss = (h * 2).sum()
    del h
    gc.collect()
    assert ref() is not None  # still saved by Exp (its output) for the backward pass
    loss.backward()
    gc.collect()
    assert ref() is None


def test_memory_is_flat_over_many_training_steps():
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.standard_normal((64, 64)), requires_grad=True)
    x = tg.tensor(rng.standard_normal((32, 64)))

    def step():
        loss = ((x @ w).tanh() ** 2).mean()
        loss.backward()
        with tg.no_grad():
            w.sub_(0.01 * w.grad)
        w.grad = None

    for _ in range(20):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(200):
        step()
    gc.collect()
    growth = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert growth < 200_000, f"memory grew by {growth} bytes over 200 steps"


# ----- misuse --------------------------------------------------------------------------------

def test_backward_on_non_scalar_needs_a_gradient():
    y = f64([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = f64([1.0, 2.0, 3.0]) * 2
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        y.backward(np.ones(4))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        f64([1.0], requires_grad=False).sum().backward()


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        tg.tensor([1, 2, 3], requires_grad=True)


def test_in_place_change_of_a_saved_input_is_detected():
    a = f64([1.0, 2.0], requires_grad=False)
    w = f64([3.0, 4.0])
    y = (w * a).sum()          # Mul saves a
    a.add_(1.0)                # ... which is then changed
    with pytest.raises(RuntimeError, match="version 1; expected version 0"):
        y.backward()


def test_in_place_change_of_a_saved_output_is_detected():
    w = f64([1.0, 2.0])
    y = w.exp()                # Exp saves its output
    loss = y.sum()
    with tg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_in_place_change_through_a_view_is_detected():
    a = f64([[1.0, 2.0], [3.0, 4.0]], requires_grad=False)
    w = f64([1.0, 1.0])
    y = (a * w).sum()
    row = a[0]
    row.mul_(2.0)              # changes a through the view
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


def test_parameter_update_before_backward_is_detected():
    w = f64([1.0, 2.0])
    loss = (w * w).sum()
    with tg.no_grad():
        w.sub_(0.1)            # an optimizer step too early
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_in_place_on_a_leaf_that_requires_grad_raises_under_grad_mode():
    w = f64([1.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="autograd graph"):
        (w * 2).mul_(3.0)


def test_mixing_devices_is_an_error_that_names_both(monkeypatch):
    class OtherDeviceArray(np.ndarray):
        pass

    a = f64([1.0, 2.0])
    b = f64([1.0, 2.0])
    b.data = b.data.view(OtherDeviceArray)  # stands in for a CuPy array on a CPU-only machine
    with pytest.raises(TypeError, match="same device"):
        a + b


def test_a_failing_op_leaves_no_graph_behind():
    a = f64(np.ones((2, 3)))
    b = f64(np.ones((4, 5)))
    with pytest.raises(ValueError):
        a @ b
    assert a.grad_fn is None and a.grad is None
    (a * 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.ones((2, 3)))


def test_custom_function_returning_a_wrong_shape_is_caught():
    class Bad(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g.sum()  # wrong: should be shaped like x

    x = f64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="gradient of shape"):
        Bad.apply(x).sum().backward()


# ----- conventions at kinks and ties (documented; not gradchecked) -----------------------------

def grad_of(fn, values):
    x = f64(values)
    fn(x).sum().backward()
    return x.grad.numpy()


def test_relu_abs_at_zero_have_zero_gradient():
    np.testing.assert_array_equal(grad_of(lambda x: x.relu(), [0.0, 1.0, -1.0]), [0, 1, 0])
    np.testing.assert_array_equal(grad_of(lambda x: x.abs(), [0.0, 2.0, -2.0]), [0, 1, -1])


def test_amax_splits_ties_evenly_and_max_dim_picks_the_first():
    np.testing.assert_array_equal(grad_of(lambda x: x.max(), [1.0, 1.0, 0.0]), [.5, .5, 0])
    np.testing.assert_array_equal(grad_of(lambda x: x.amax(0), [1.0, 1.0, 0.0]), [.5, .5, 0])
    np.testing.assert_array_equal(grad_of(lambda x: x.max(0).values, [1.0, 1.0, 0.0]),
                                  [1, 0, 0])


def test_maximum_minimum_ties_split_in_half():
    np.testing.assert_array_equal(grad_of(lambda x: tg.maximum(x, f64(1.0, False)), [1.0]),
                                  [0.5])
    np.testing.assert_array_equal(grad_of(lambda x: tg.minimum(x, x), [2.0]), [1.0])


def test_clamp_passes_the_gradient_at_the_bounds():
    np.testing.assert_array_equal(grad_of(lambda x: x.clamp(-1, 1), [-1.0, 1.0, 1.5, -2]),
                                  [1, 1, 0, 0])


def test_sqrt_at_zero_is_infinite_and_where_leaks_nan_as_documented():
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isinf(grad_of(lambda x: x.sqrt(), [0.0]))[0]
        g = grad_of(lambda x: tg.where(x > 0, x.log(), tg.tensor(0.0, dtype="float64")),
                    [0.0])
    assert np.isnan(g[0])


def test_post_accumulate_grad_hook_sees_the_whole_gradient_once():
    # p is used twice: the hook must run once, after both contributions are summed
    p = tg.nn.Parameter(tg.tensor([1.0, 2.0]))
    seen = []
    handle = p.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    ((p * p).sum() + p.sum()).backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [3.0, 5.0])
    handle.remove()
    p.sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(p.grad.numpy(), [4.0, 6.0])


def test_post_accumulate_grad_hook_refused_on_non_leaf():
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_a_node_that_saves_its_output_forms_no_reference_cycle():
    """exp saves its output for backward; the node must not hold the output Tensor itself
    (output -> node -> output would keep the array alive until the garbage collector runs)."""
    gc.collect()
    gc.disable()
    try:
        x = tg.tensor(np.ones(3), requires_grad=True)
        y = x.exp()
        alive = weakref.ref(y)
        del y
        assert alive() is None
    finally:
        gc.enable()
