"""The Tensor API: creation, dtypes, devices, conversion, operators and in-place updates."""
import numpy as np
import pytest

import tinygrad_llm as tg


def test_default_dtypes_follow_pytorch():
    assert tg.tensor([1.0, 2.0]).dtype == np.float32
    assert tg.tensor([1, 2]).dtype == np.int64
    assert tg.tensor(np.zeros(2)).dtype == np.float64       # NumPy arrays keep their dtype
    assert tg.zeros(2, 3).dtype == np.float32
    assert tg.ones((2, 3), dtype=np.float64).dtype == np.float64
    assert tg.arange(5).dtype == np.int64
    assert tg.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert tg.full((2,), 1.5).dtype == np.float32
    assert tg.randn(2, generator=tg.Generator(0)).dtype == np.float32


def test_tensor_copies_its_input():
    a = np.zeros(3)
    t = tg.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 0


def test_creation_shapes_and_like_functions():
    x = tg.randn(2, 3)
    assert tg.zeros_like(x).shape == (2, 3)
    assert tg.ones_like(x, dtype=np.float64).dtype == np.float64
    assert tg.full_like(x, 7.0).numpy().tolist() == [[7.0] * 3] * 2
    assert tg.rand_like(x).shape == (2, 3) and tg.randn_like(x).shape == (2, 3)
    assert tg.eye(3).numpy().trace() == 3
    assert tg.linspace(0, 1, 5).shape == (5,)
    assert tg.arange(2, 10, 3).tolist() == [2, 5, 8]


def test_random_tensors_are_reproducible_with_a_seeded_generator():
    a = tg.randn(4, generator=tg.Generator(123))
    b = tg.randn(4, generator=tg.Generator(123))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    tg.manual_seed(7)
    c = tg.rand(3)
    tg.manual_seed(7)
    np.testing.assert_array_equal(c.numpy(), tg.rand(3).numpy())
    u = tg.rand(1000, generator=tg.Generator(1)).numpy()
    assert 0 <= u.min() and u.max() < 1
    with pytest.raises(TypeError, match="generator"):
        tg.randn(2, generator=42)


def test_generator_state_roundtrip():
    g = tg.Generator(5)
    state = g.get_state()
    a = tg.randn(3, generator=g)
    g.set_state(state)
    np.testing.assert_array_equal(a.numpy(), tg.randn(3, generator=g).numpy())


def test_properties_and_conversions():
    x = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and x.ndim == 2 and x.size() == (2, 3) and x.size(1) == 3
    assert x.numel() == 6 and len(x) == 2 and x.device == "cpu"
    assert x.T.shape == (3, 2) and x.mT.shape == (3, 2)
    assert x.sum().item() == 21.0 and float(x[0, 0]) == 1.0
    assert x.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64
    assert x.to(np.float64).dtype == np.float64 and x.to("cpu").device == "cpu"
    with pytest.raises(ValueError, match="one-element"):
        x.item()
    assert "tensor(" in repr(x) and "requires_grad=True" in repr(x.detach().requires_grad_())


def test_comparisons_give_boolean_tensors():
    x = tg.tensor([1.0, 2.0, 3.0])
    assert (x > 1.5).tolist() == [False, True, True]
    assert (x == 2.0).tolist() == [False, True, False]
    assert ((x < 3) & (x >= 2)).tolist() == [False, True, False]
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x > 0)


def test_detach_shares_data_and_cuts_the_graph():
    x = tg.randn(3, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.data is x.data
    c = x.clone()
    assert c.requires_grad and c.data is not x.data


def test_in_place_updates_and_setitem():
    x = tg.zeros(2, 3)
    x[0, 1] = 5.0
    x += 1
    x *= 2
    x.sub_(tg.ones(3), alpha=2)
    assert x.tolist() == [[0.0, 10.0, 0.0], [0.0, 0.0, 0.0]]
    x.fill_(3.0).clamp_(max=2.0)
    assert x.tolist() == [[2.0] * 3] * 2
    x.zero_().copy_(tg.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [[1.0, 2.0, 3.0]] * 2
    assert x._version[0] == 8  # one bump per in-place update


def test_numpy_refuses_a_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match="detach"):
        tg.randn(2, requires_grad=True).numpy()


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="unknown device"):
        tg.tensor([1.0], device="tpu")


@pytest.mark.skipif(tg.backend.gpu_available(), reason="checks the CPU-only message")
def test_cuda_without_a_gpu_says_why():
    with pytest.raises(RuntimeError, match="CuPy"):
        tg.randn(2).to("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not tg.backend.gpu_available(), reason="needs a CUDA GPU")
def test_to_cuda_and_back_keeps_values_and_gradient():
    x = tg.randn(3, requires_grad=True, dtype=np.float64)
    y = x.to("cuda")
    assert y.device == "cuda"
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())
    with pytest.raises(TypeError, match="same device"):
        x + y
