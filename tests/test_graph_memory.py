"""The graph keeps an intermediate array alive only while some backward formula needs it.

A node's parent list holds the input Tensor when the op saved that input's array (or is a
leaf); otherwise it holds the node that produced the input, so an array that only flowed
through (the output of a matmul read by a residual add, say) is freed as soon as the user's
code drops it, as in PyTorch. Gradients, double backward and the graph drawing must not
change because of it.
"""
import gc
import weakref

import numpy as np
from hypothesis import given, settings, strategies as st

import tinygrad_llm as tl
from tinygrad_llm.visualize import graph_to_dot


def leaf(shape, seed=0):
    rng = np.random.default_rng(seed)
    return tl.tensor(rng.standard_normal(shape), requires_grad=True)


def is_alive(ref):
    gc.collect()
    return ref() is not None


def test_an_input_that_no_backward_saves_is_freed():
    x = leaf((3, 4))
    h = x * 2.0
    ref = weakref.ref(h.data)
    z = h.exp() + 1.0                     # exp saves its output, add saves nothing
    del h
    assert not is_alive(ref)
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * np.exp(2.0 * x.data))


def test_an_input_that_a_backward_saves_stays_alive():
    x = leaf((3, 4))
    h = x * 2.0
    ref = weakref.ref(h.data)
    z = h.sin()                           # d sin(h)/dh = cos(h): h is saved
    del h
    assert is_alive(ref)
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * np.cos(2.0 * x.data))


def test_linear_output_read_only_by_a_residual_add_is_freed():
    x, w = leaf((5, 8), 1), leaf((8, 8), 2)
    y = x @ w
    ref = weakref.ref(y.data)
    out = (x + y).tanh()
    del y
    assert not is_alive(ref)
    out.sum().backward()
    g = 1.0 - np.tanh(x.data + x.data @ w.data) ** 2
    np.testing.assert_allclose(w.grad.data, x.data.T @ g)
    np.testing.assert_allclose(x.grad.data, g + g @ w.data.T)


def test_a_saved_output_whose_tensor_was_dropped_still_double_differentiates():
    x = leaf((4,))
    y = (x * 3.0).exp()                   # exp's saved output; y itself is dropped
    z = y * 1.0 + 0.0
    del y
    (g,) = tl.autograd.grad(z.sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.data, 3.0 * np.exp(3.0 * x.data))
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 9.0 * np.exp(3.0 * x.data))


def test_the_drawing_keeps_every_edge_after_intermediates_are_dropped():
    x = leaf((2, 3))
    h = x * 2.0
    out = (h.exp() + 1.0).sum()
    kept = graph_to_dot(out)
    del h
    gc.collect()
    assert graph_to_dot(out) == kept
    assert kept.count("->") == 4          # x -> mul -> exp -> add -> sum


UNARY = {
    "exp": (lambda t: t.exp(), np.exp),
    "tanh": (lambda t: t.tanh(), np.tanh),
    "sin": (lambda t: t.sin(), np.sin),
    "scale": (lambda t: t * 0.5, lambda a: a * 0.5),
    "shift": (lambda t: t + 0.25, lambda a: a + 0.25),
    "square": (lambda t: t * t, lambda a: a * a),
    "transpose": (lambda t: t.transpose(0, 1), lambda a: a.T),
}


@settings(max_examples=40, deadline=None)
@given(names=st.lists(st.sampled_from(sorted(UNARY)), min_size=1, max_size=6),
       seed=st.integers(0, 2 ** 16))
def test_dropping_every_intermediate_changes_no_gradient(names, seed):
    def run(keep):
        x = leaf((3, 3), seed)
        t, kept = x, []
        for name in names:
            t = UNARY[name][0](t)
            if keep:
                kept.append(t)
        loss = (t * t).sum()
        gc.collect()
        (g,) = tl.autograd.grad(loss, [x], create_graph=True)
        (gg,) = tl.autograd.grad(g.sum(), [x])
        return g.data, gg.data

    g_kept, gg_kept = run(True)
    g_dropped, gg_dropped = run(False)
    np.testing.assert_array_equal(g_dropped, g_kept)
    np.testing.assert_array_equal(gg_dropped, gg_kept)
