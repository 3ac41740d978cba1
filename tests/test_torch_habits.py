"""Regression tests for the silent bugs and torch habits of issue 16, each against PyTorch where
it is installed: mixed basic/advanced indexing, pow's gradients at a zero base, zero-sized
matmuls, and the Tensor surface PyTorch programs lean on (repr, format, __array__, .grad
assignment, state_dict sharing memory, optimizer.state[param], inference_mode, clear errors)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tl
from tinygrad_llm.testing import gradcheck


def _torch():
    return pytest.importorskip("torch")


# ----- indexing: integers select first, as in PyTorch -------------------------------------------

def _index_items(draw, shape):
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "array", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            lo = draw(st.integers(0, n))
            items.append(slice(lo, draw(st.integers(lo, n))))
        elif kind == "array":
            items.append(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3)))
        else:
            items.append(slice(None))
    return tuple(items)


@st.composite
def index_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    return shape, _index_items(draw, shape)


@given(index_cases())
def test_mixed_indexing_matches_torch_forward_and_backward(case):
    torch = _torch()
    shape, index = case
    n_arrays = sum(isinstance(i, list) for i in index)
    if n_arrays > 1:   # several index arrays must broadcast together
        sizes = {len(i) for i in index if isinstance(i, list)}
        if len(sizes - {1}) > 1:
            return
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    t = torch.tensor(x, requires_grad=True)
    t_index = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
    want = t[t_index]
    ours = tl.tensor(x, requires_grad=True)
    got = ours[index]
    assert tuple(got.shape) == tuple(want.shape), (shape, index)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    g = np.random.default_rng(0).standard_normal(tuple(want.shape))
    want.backward(torch.tensor(g))
    got.backward(tl.tensor(g))
    np.testing.assert_allclose(ours.grad.numpy(), t.grad.numpy())


def test_the_issue_example_is_not_transposed():
    x = tl.zeros(2, 5, 6)
    assert tuple(x[0, :, [0, 1]].shape) == (5, 2)


# ----- pow at a zero base ------------------------------------------------------------------------

def test_pow_gradients_at_zero_follow_torch():
    torch = _torch()
    ys = [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 0.3]
    x = tl.tensor(np.zeros(len(ys)), dtype=tl.float64, requires_grad=True)
    y = tl.tensor(ys, dtype=tl.float64, requires_grad=True)
    (x ** y).sum().backward()
    tx = torch.zeros(len(ys), dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(ys, dtype=torch.float64, requires_grad=True)
    (tx ** ty).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(y.grad.numpy(), ty.grad.numpy())
    z = tl.tensor(0.0, requires_grad=True)
    (z ** 0).backward()
    assert z.grad.item() == 0.0


@given(st.floats(0.2, 3.0), st.floats(-2.0, 2.0))
def test_pow_gradcheck_away_from_zero(base, exponent):
    a = tl.tensor([base, base + 0.5], dtype=tl.float64, requires_grad=True)
    b = tl.tensor([exponent, exponent / 2], dtype=tl.float64, requires_grad=True)
    assert gradcheck(lambda a, b: a ** b, [a, b])


# ----- matmul with zero-sized dimensions ------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [((8, 8), (8, 0)), ((0, 8), (8, 3)), ((8, 0), (0, 3)),
                                    ((2, 0, 4), (4, 5)), ((3,), (3, 0)), ((0,), (0,)),
                                    ((2, 3, 0), (2, 0, 4))])
def test_matmul_with_zero_sized_dims(sa, sb):
    a = tl.randn(*sa, requires_grad=True)
    b = tl.randn(*sb, requires_grad=True)
    c = a @ b
    c.sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    np.testing.assert_array_equal(c.detach().numpy(), a.detach().numpy() @ b.detach().numpy())


def test_cat_of_zero_dim_tensors_and_stack_with_a_tensor_dim():
    with pytest.raises(RuntimeError, match="zero-dimensional"):
        tl.cat([tl.tensor(1.0), tl.tensor(2.0)])
    out = tl.stack([tl.tensor([1.0]), tl.tensor([2.0])], dim=tl.tensor(1))
    assert tuple(out.shape) == (1, 2)
    with pytest.raises(TypeError, match="dim must be an int"):
        tl.stack([tl.tensor([1.0])], dim=0.5)


# ----- the Tensor surface -----------------------------------------------------------------------

def test_repr_format_and_array_like_torch():
    torch = _torch()
    for values, kw in [([1.0, 2.5], {}), ([1, 2], {}), ([1.0, 2.0], {"dtype": "float64"}),
                       ([1e-5, 1e6], {})]:
        ours = repr(tl.tensor(values, **({"dtype": kw["dtype"]} if kw else {})))
        theirs = repr(torch.tensor(values, **({"dtype": getattr(torch, kw["dtype"])}
                                               if kw else {})))
        assert ours.replace("dtype=float64", "dtype=torch.float64") == theirs
    assert repr(tl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)) == repr(
        torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True))
    assert f"{tl.tensor(1.23456):.3f}" == "1.235"
    np.testing.assert_array_equal(np.asarray(tl.tensor([1.0, 2.0])), [1.0, 2.0])


def test_grad_assignment_is_checked():
    x = tl.zeros(3, requires_grad=True)
    x.grad = tl.ones(3)
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = tl.ones(4)
    with pytest.raises(RuntimeError, match="different type"):
        x.grad = tl.ones(3, dtype=tl.float64)
    with pytest.raises(TypeError):
        x.grad = np.ones(3)
    x.grad = None


def test_state_dict_values_share_memory_and_optimizer_state_by_parameter():
    model = tl.nn.Linear(2, 2)
    sd = model.state_dict()
    sd["weight"].copy_(tl.zeros(2, 2))
    assert not model.weight.data.any()
    opt = tl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(tl.ones(1, 2)).sum().backward()
    opt.step()
    assert model.weight in opt.state and "momentum_buffer" in opt.state[model.weight]


def test_inference_mode_records_no_graph_and_unsupported_names_say_what_to_do():
    x = tl.ones(2, requires_grad=True)
    with tl.inference_mode():
        assert not (x * 2).requires_grad
    with tl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    for name in ("compile", "bfloat16", "backends"):
        with pytest.raises(NotImplementedError, match=name):
            getattr(tl, name)


def test_torch_names_exist_at_the_top_level():
    import tinygrad_llm.nn.functional as F
    assert tl.float is tl.float32 and tl.long is tl.int64 and tl.double is tl.float64
    assert tl.device("cuda:0").type == "cuda" and tl.device("cpu").index is None
    assert callable(F.nll_loss) and callable(F.binary_cross_entropy_with_logits)
    assert callable(tl.nn.utils.clip_grad_norm_) and tl.utils.data.DataLoader
    assert tl.matmul(input=tl.ones(1, 2), other=tl.ones(2, 1)).item() == 2.0
    assert (2 & tl.tensor([3])).item() == 2 and (2 | tl.tensor([1])).item() == 3
