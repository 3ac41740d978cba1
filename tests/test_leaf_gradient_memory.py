"""A leaf's .grad never shares memory with another gradient or array.

The backward pass keeps a fresh gradient array as the leaf's .grad when nothing else holds or
shares it (no copy, as PyTorch steals such gradients), and copies it otherwise: an op may
return the very array it received (add), a view of it (reshape, transpose, slices), the same
array for two inputs, or keep a reference to what it returned. Changing one .grad in place
(an optimizer, clip_grad_norm_, zero_grad(set_to_none=False)) must then change nothing else.
"""
import numpy as np
from hypothesis import given, settings, strategies as st

import tinygrad_llm as tl
from tinygrad_llm.autograd import Function


def arrays_of(tensors):
    return [t.data for t in tensors] + [t.grad.data for t in tensors if t.grad is not None]


def assert_private_grads(leaves, others=()):
    grads = [t.grad.data for t in leaves if t.grad is not None]
    for i, g in enumerate(grads):
        for other in grads[i + 1:] + [t.data for t in leaves] + list(others):
            assert not np.shares_memory(g, other)


def test_add_hands_the_same_gradient_to_both_inputs_and_each_gets_its_own():
    a = tl.tensor(np.ones(3, np.float32), requires_grad=True)
    b = tl.tensor(np.ones(3, np.float32), requires_grad=True)
    (a + b).sum().backward()
    assert_private_grads([a, b])
    a.grad.data[0] = 7.0
    assert b.grad.data[0] == 1.0


def test_views_of_one_gradient_are_copied():
    x = tl.tensor(np.arange(6, dtype=np.float32), requires_grad=True)
    w = tl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    y = x.reshape(2, 3) * w                   # x's gradient is a view of w * g
    z = (y + w.transpose(0, 1).transpose(0, 1)).sum()
    z.backward()
    assert_private_grads([x, w])
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6, dtype=np.float32))


class KeepsItsGradient(Function):
    """y = 2x, whose backward also keeps the gradient it returns."""

    def forward(self, x):
        return 2 * x

    def backward(self, g):
        self.kept = 2 * g
        return self.kept


def test_a_gradient_an_op_still_holds_is_copied():
    x = tl.tensor(np.ones(4, np.float32), requires_grad=True)
    y = KeepsItsGradient.apply(x)
    node = y._ctx
    y.sum().backward()
    assert not np.shares_memory(x.grad.data, node.kept)
    node.kept[0] = 99.0
    assert x.grad.data[0] == 2.0


class ReturnsAViewOfWhatItKeeps(Function):
    """y = 2x, whose backward returns the first half of an array it keeps: the returned view
    is referenced by nothing else, but its memory is."""

    def forward(self, x):
        return 2 * x

    def backward(self, g):
        self.kept = np.concatenate([2 * g, 2 * g])
        return self.kept[:g.shape[0]]


def test_a_view_of_an_array_an_op_still_holds_is_copied():
    x = tl.tensor(np.ones(4, np.float32), requires_grad=True)
    y = ReturnsAViewOfWhatItKeeps.apply(x)
    node = y._ctx
    y.sum().backward()
    assert not np.shares_memory(x.grad.data, node.kept)


def test_a_fresh_large_gradient_is_kept_without_a_copy_and_stays_right():
    x = tl.tensor(np.ones((256, 512), np.float32), requires_grad=True)
    y = (x * 3.0).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((256, 512), 3.0, np.float32))
    assert x.grad.data.flags.c_contiguous and x.grad.dtype == np.float32


OPS = ["add", "mul", "reshape", "transpose", "slice", "exp", "matmul", "broadcast", "reuse"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(OPS), min_size=1, max_size=8), st.integers(0, 2**31 - 1))
def test_random_graphs_give_private_correct_gradients(ops, seed):
    """Random chains over three (4, 4) float64 leaves: every .grad is private, so adding 1
    to each in place leaves the others at the values of a second, untouched run."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal((4, 4)) * 0.5 for _ in range(3)]

    def run():
        leaves = [tl.tensor(v.copy(), requires_grad=True) for v in values]
        h = leaves[0]
        for i, op in enumerate(ops):
            other = leaves[1 + i % 2]
            if op == "add":
                h = h + other
            elif op == "mul":
                h = h * other
            elif op == "reshape":
                h = h.reshape(2, 8).reshape(4, 4)
            elif op == "transpose":
                h = h.transpose(0, 1)
            elif op == "slice":
                h = tl.cat([h[:, :2], h[:, 2:]], dim=1)
            elif op == "exp":
                h = (h * 0.1).exp()
            elif op == "matmul":
                h = h @ other
            elif op == "broadcast":
                h = h + other[0]
            else:  # the same leaf twice in one op
                h = h * leaves[0] + leaves[0]
        (h * h).sum().backward()
        return leaves

    leaves = run()
    assert_private_grads(leaves)
    for t in leaves:                      # in-place edits of one gradient reach no other
        if t.grad is not None:
            t.grad.data += 1.0
    for t, ref in zip(leaves, run()):          # a second, untouched run
        if t.grad is not None:
            np.testing.assert_allclose(t.grad.numpy() - 1.0, ref.grad.numpy(), rtol=1e-12,
                                       atol=1e-12)
