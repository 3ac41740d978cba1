"""tinygrad_llm.save / load (serialization.py): round trips of every supported value, state
dicts, shared tensors, file objects, atomic writes, pickle refused, map_location, and
interchange with PyTorch through safetensors."""
import io
import math
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm import nn, optim
from tinygrad_llm.nn.module import Parameter
from tinygrad_llm.serialization import load, save

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
          np.bool_]


def _round_trip(obj, **load_kwargs):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    return load(buf, **load_kwargs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3, 4)], ids=str)
def test_tensor_round_trip_keeps_values_dtype_shape(dtype, shape):
    values = (np.random.default_rng(0).standard_normal(shape) * 50).astype(dtype)
    back = _round_trip(tl.tensor(values))
    assert isinstance(back, tl.Tensor) and not back.requires_grad
    assert back.dtype == np.dtype(dtype) and back.shape == shape
    np.testing.assert_array_equal(back.numpy(), values)


def test_non_contiguous_requires_grad_and_parameter():
    base = tl.tensor(np.arange(12.0).reshape(3, 4), dtype=np.float64)
    w = Parameter(np.ones((2, 2), np.float32))
    back = _round_trip({"t": base.T, "x": tl.ones(2, requires_grad=True), "w": w})
    np.testing.assert_array_equal(back["t"].numpy(), np.arange(12.0).reshape(3, 4).T)
    assert back["x"].requires_grad and back["x"].is_leaf
    assert isinstance(back["w"], Parameter) and back["w"].requires_grad


def test_nested_structure_and_python_scalars():
    obj = OrderedDict([
        ("epoch", 3), ("lr", 0.1), ("nan", float("nan")), ("inf", -math.inf),
        ("neg_zero", -0.0), ("big", 2 ** 100), ("flag", True), ("name", "gpt ✓"),
        ("none", None), ("tuple", (1, [2.5, "x"], ())), ("empty", {}),
        (7, "int key"), ("arrays", [np.arange(3), np.float32(1.5)]),
    ])
    back = _round_trip(obj)
    assert type(back) is OrderedDict and list(back) == list(obj)
    assert back["epoch"] == 3 and type(back["epoch"]) is int
    assert back["lr"] == 0.1 and math.isnan(back["nan"]) and back["inf"] == -math.inf
    assert math.copysign(1, back["neg_zero"]) == -1 and back["big"] == 2 ** 100
    assert back["flag"] is True and back["name"] == "gpt ✓" and back["none"] is None
    assert back["tuple"] == (1, [2.5, "x"], ()) and type(back["tuple"][1]) is list
    assert back["empty"] == {} and back[7] == "int key"
    assert isinstance(back["arrays"][0], np.ndarray)
    np.testing.assert_array_equal(back["arrays"][0], np.arange(3))
    assert type(back["arrays"][1]) is np.float32 and back["arrays"][1] == 1.5


def test_shared_tensor_is_stored_once_and_loads_as_one_object():
    t = tl.randn(4)
    back = _round_trip({"a": t, "b": [t, t.clone()]})
    assert back["a"] is back["b"][0] and back["a"] is not back["b"][1]


def test_model_state_dict_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    x = tl.randn(3, 4)
    path = tmp_path / "model.safetensors"
    save(model.state_dict(), path)                       # a pathlib.Path
    other = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    other.load_state_dict(load(str(path)))               # and a str
    np.testing.assert_array_equal(other(x).detach().numpy(), model(x).detach().numpy())


def test_checkpoint_dict_with_optimizer_resumes_identically(tmp_path):
    def step(model, opt, x):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()

    x = tl.randn(5, 4)
    model = nn.Linear(4, 3)
    opt = optim.Adam(model.parameters(), lr=0.01)
    step(model, opt, x)
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 1},
         tmp_path / "ckpt.pt")
    step(model, opt, x)
    ckpt = load(tmp_path / "ckpt.pt")
    model2 = nn.Linear(4, 3)
    model2.load_state_dict(ckpt["model"])
    opt2 = optim.Adam(model2.parameters(), lr=0.01)
    opt2.load_state_dict(ckpt["optimizer"])
    step(model2, opt2, x)
    assert ckpt["step"] == 1
    np.testing.assert_array_equal(model2.weight.detach().numpy(), model.weight.detach().numpy())


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save({"v": tl.ones(3)}, path)
    with pytest.raises(TypeError, match=r"'bad\.0'"):
        save({"v": tl.zeros(3), "bad": [object()]}, path)   # refused before anything is written

    def crash(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save({"v": tl.zeros(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["v"].numpy(), np.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]    # no temporary file left behind


@pytest.mark.parametrize("obj, match", [
    (nn.Linear(2, 2), "state_dict"), ({"f": lambda: 0}, "function"), ({1, 2}, "set"),
    (np.array(["a"]), "dtype"), ({"c": 1j}, "complex")], ids=["module", "lambda", "set",
                                                               "strings", "complex"])
def test_unsupported_objects_raise_type_error(obj, match):
    with pytest.raises(TypeError, match=match):
        save(obj, io.BytesIO())


def test_pickle_files_are_refused_with_advice(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    with pytest.raises(ValueError, match="never unpickles.*safetensors"):
        load(path)
    zipped = tmp_path / "zipped.pt"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ValueError, match="torch.save"):
        load(zipped, weights_only=True)


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load(tmp_path / "nothing.safetensors")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello, this is not a tensor file")
    with pytest.raises(ValueError, match="not a safetensors file"):
        load(junk)
    buf = io.BytesIO()
    save({"w": tl.ones(100)}, buf)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(buf.getvalue()[:-40])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load(truncated)


def test_map_location():
    obj = {"w": tl.ones(2)}
    for where in ("cpu", {"cuda:0": "cpu"}, lambda storage, loc: storage):
        back = _round_trip(obj, map_location=where)
        assert back["w"].device == "cpu"
        np.testing.assert_array_equal(back["w"].numpy(), np.ones(2))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        _round_trip(obj, map_location="tpu")
    if not tl.backend.gpu_available():
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            _round_trip(obj, map_location="cuda")


def test_plain_safetensors_file_loads_as_dict_of_tensors(tmp_path):
    from safetensors.numpy import save_file
    save_file({"b": np.zeros(2, np.float32), "a": np.arange(3)}, str(tmp_path / "x.st"))
    back = load(tmp_path / "x.st")
    assert set(back) == {"a", "b"} and all(isinstance(v, tl.Tensor) for v in back.values())
    np.testing.assert_array_equal(back["a"].numpy(), np.arange(3))


# ----- interchange with PyTorch --------------------------------------------------------------

def test_torch_state_dict_loads_into_the_same_model(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    save_file(ref.state_dict(), str(tmp_path / "torch.safetensors"))
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    model.load_state_dict(load(tmp_path / "torch.safetensors"))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(model(tl.tensor(x)).detach().numpy(),
                               ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_our_file_is_readable_by_torch_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    model = nn.Linear(3, 2)
    save(model.state_dict(), tmp_path / "ours.safetensors")
    theirs = load_file(str(tmp_path / "ours.safetensors"))
    assert set(theirs) == {"weight", "bias"}
    np.testing.assert_array_equal(theirs["weight"].numpy(), model.weight.detach().numpy())
    assert theirs["bias"].dtype == torch.float32


def test_torch_refuses_what_we_refuse():
    """torch.load(weights_only=True) also refuses arbitrary pickled objects."""
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"f": print}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buf, weights_only=True)
    buf.seek(0)
    with pytest.raises(ValueError, match="never unpickles"):
        load(buf)


def test_header_sizes_that_look_like_a_pickle_opcode_still_load(tmp_path):
    """Regression: a safetensors header whose size starts with byte 0x80 (pickle's PROTO
    opcode) was once refused as a pickle. Read from a file object and from a path."""
    for n in range(1, 300):
        buf = io.BytesIO()
        save({"k" * n: tl.ones(2)}, buf)
        if buf.getvalue()[0] == 0x80:
            break
    else:
        pytest.fail("no header size with a first byte of 0x80 found")
    buf.seek(0)
    np.testing.assert_array_equal(load(buf)["k" * n].numpy(), np.ones(2))
    (tmp_path / "x.safetensors").write_bytes(buf.getvalue())
    np.testing.assert_array_equal(load(tmp_path / "x.safetensors")["k" * n].numpy(), np.ones(2))
