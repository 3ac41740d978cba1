"""tinygrad_llm.cuda answers torch.cuda's questions honestly: on a machine without CuPy or a
GPU it reports no device (as CPU-only PyTorch does) and the calls that need a device raise;
with a GPU (marked tests) it reports what CuPy sees."""
import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm import backend, cuda

NO_GPU = not backend.gpu_available()


def test_is_available_follows_the_backend():
    assert cuda.is_available() is backend.gpu_available()
    assert cuda.is_initialized() is backend.gpu_available()
    assert cuda.is_bf16_supported() is False


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU-only answers")
def test_cpu_only_answers():
    assert cuda.device_count() == 0
    assert cuda.memory_allocated() == 0 and cuda.memory_reserved() == 0
    cuda.synchronize()                       # nothing queued: returns at once
    cuda.empty_cache()
    for fn in (cuda.current_device, cuda.get_device_name, lambda: cuda.set_device(0),
               cuda.init):
        with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
            fn()


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU-only answers")
def test_cpu_only_answers_agree_with_cpu_only_torch():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this torch sees a GPU")
    assert cuda.is_available() == torch.cuda.is_available()
    assert cuda.device_count() == torch.cuda.device_count()
    assert cuda.is_initialized() == torch.cuda.is_initialized()
    assert cuda.memory_allocated() == torch.cuda.memory_allocated()


def test_manual_seed_changes_no_stream():
    """There is no CUDA random stream: seeding it leaves the default generator's draws as
    they were (random tensors on the GPU come from the CPU generator)."""
    tl.manual_seed(7)
    first = tl.randn(4).numpy()
    tl.manual_seed(7)
    cuda.manual_seed(123)
    cuda.manual_seed_all(456)
    np.testing.assert_array_equal(tl.randn(4).numpy(), first)
    with pytest.raises(TypeError, match="int seed"):
        cuda.manual_seed("0")


def test_device_index_parsing():
    assert cuda._index(2) == 2 and cuda._index("cuda") == 0 and cuda._index("cuda:3") == 3
    with pytest.raises(ValueError, match="'cpu'"):
        cuda._index("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU, reason="CuPy with a CUDA GPU is not available")
def test_gpu_answers():
    assert cuda.device_count() >= 1
    assert cuda.current_device() == 0
    assert isinstance(cuda.get_device_name(), str) and cuda.get_device_name()
    before = cuda.memory_allocated()
    x = tl.ones(1024, 1024).to("cuda")
    cuda.synchronize()
    assert cuda.memory_allocated() >= before + x.numel() * 4
    del x
    cuda.empty_cache()
