"""Checkpoints: bit-exact round trips, atomic writes, and clear errors for bad files."""
import json
import os
import pickle

import numpy as np
import pytest

from tinygrad_llm import checkpoint as ck


class TinyModel:
    """Just enough of a Module for the checkpoint functions: state_dict / load_state_dict."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"wte.weight": rng.standard_normal((5, 3)).astype(np.float32),
                       "h.0.ln.bias": rng.standard_normal(3),
                       "scale": np.array(2.5, dtype=np.float32),
                       "empty": np.zeros((0, 4), dtype=np.float32)}

    def state_dict(self):
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        for k in self.params:
            self.params[k] = np.array(state[k])


class TinyOptimizer:
    def __init__(self):
        self.state = {"state": {"wte.weight": {"step": 3, "exp_avg": np.ones((5, 3))}},
                      "param_groups": [{"lr": 1e-3, "betas": [0.9, 0.999], "params": ["a"]}]}

    def state_dict(self):
        return self.state

    def load_state_dict(self, state):
        self.state = state


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        np.testing.assert_array_equal(a[k], b[k])


def test_round_trip_is_bit_exact(tmp_path):
    model, opt = TinyModel(0), TinyOptimizer()
    rng_state = np.random.default_rng(3).bit_generator.state
    ck.save_checkpoint(tmp_path / "ckpt", model, optimizer=opt, step=7, rng_state=rng_state,
                       model_config={"n_layer": 1})
    other, opt2 = TinyModel(1), TinyOptimizer()
    opt2.state = None
    info = ck.load_checkpoint(tmp_path / "ckpt", other, optimizer=opt2)
    assert_same(model.state_dict(), other.state_dict())
    assert info["state"]["step"] == 7
    assert info["config"]["model_config"] == {"n_layer": 1}
    np.testing.assert_array_equal(opt2.state["state"]["wte.weight"]["exp_avg"], np.ones((5, 3)))
    assert opt2.state["param_groups"][0]["betas"] == [0.9, 0.999]
    restored = np.random.default_rng(0)
    restored.bit_generator.state = info["state"]["rng_state"]
    assert restored.random() == np.random.default_rng(3).random()


def test_a_crash_mid_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    ck.save_checkpoint(folder, TinyModel(0), step=1)
    calls = {"n": 0}
    real = ck.save_arrays

    def crashing(path, arrays, metadata=None, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies half-way through the new checkpoint
        return real(path, arrays, metadata, **kw)

    monkeypatch.setattr(ck, "save_arrays", crashing)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(folder, TinyModel(1), step=2)
    monkeypatch.setattr(ck, "save_arrays", real)
    loaded = TinyModel(5)
    info = ck.load_checkpoint(folder, loaded)
    assert info["state"]["step"] == 1
    assert_same(loaded.state_dict(), TinyModel(0).state_dict())
    ck.save_checkpoint(folder, TinyModel(1), step=2)  # the leftover .tmp does not get in the way
    assert ck.load_checkpoint(folder, loaded)["state"]["step"] == 2


def test_crash_between_the_two_renames_falls_back_to_old(tmp_path):
    folder = tmp_path / "ckpt"
    ck.save_checkpoint(folder, TinyModel(0), step=4)
    os.replace(folder, str(folder) + ".old")
    assert ck.load_checkpoint(folder, TinyModel(1))["state"]["step"] == 4


@pytest.mark.parametrize("fraction", [0.0, 0.125, 0.5, 0.875])
def test_truncated_weights_give_a_clear_error_and_load_nothing(tmp_path, fraction):
    folder = tmp_path / "ckpt"
    ck.save_checkpoint(folder, TinyModel(0))
    path = folder / ck.MODEL_FILE
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    model = TinyModel(1)
    before = {k: np.array(v) for k, v in model.state_dict().items()}   # a snapshot
    with pytest.raises(ValueError, match="model.safetensors is not a valid safetensors"):
        ck.load_checkpoint(folder, model)
    assert_same(before, model.state_dict())


def test_random_bytes_and_bad_json(tmp_path):
    folder = tmp_path / "ckpt"
    ck.save_checkpoint(folder, TinyModel(0))
    (folder / ck.MODEL_FILE).write_bytes(os.urandom(300))
    with pytest.raises(ValueError, match="not a valid safetensors"):
        ck.load_checkpoint(folder, TinyModel(0))
    ck.save_checkpoint(folder, TinyModel(0))
    (folder / ck.CONFIG_FILE).write_text('{"format": "tinygrad_llm.check')
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        ck.load_checkpoint(folder, TinyModel(0))


def test_a_pickle_payload_is_never_executed(tmp_path):
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    folder = tmp_path / "ckpt"
    ck.save_checkpoint(folder, TinyModel(0))
    (folder / ck.MODEL_FILE).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError):
        ck.load_checkpoint(folder, TinyModel(0))
    assert not sentinel.exists()
    with pytest.raises(ValueError, match="pickle"):
        ck.load_arrays(str(tmp_path / "pytorch_model.bin"))


def test_mismatched_keys_are_all_named(tmp_path):
    folder = tmp_path / "ckpt"
    ck.save_checkpoint(folder, TinyModel(0))
    other = TinyModel(0)
    other.params["extra.weight"] = np.zeros(2)
    other.params["wte.weight"] = np.zeros((6, 3), np.float32)
    del other.params["scale"]
    with pytest.raises(ValueError) as err:
        ck.load_checkpoint(folder, other)
    msg = str(err.value)
    assert "missing keys: extra.weight" in msg
    assert "unexpected keys: scale" in msg
    assert "wte.weight: checkpoint (5, 3) vs model (6, 3)" in msg
    assert other.params["wte.weight"].shape == (6, 3)  # nothing was loaded


def test_unsupported_format_version(tmp_path):
    folder = tmp_path / "ckpt"
    ck.save_checkpoint(folder, TinyModel(0))
    cfg = json.loads((folder / ck.CONFIG_FILE).read_text())
    cfg["format_version"] = 99
    (folder / ck.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="version 99"):
        ck.load_checkpoint(folder, TinyModel(0))


# ----- a crash or a full disk at every point of a save ---------------------------------------

class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches or cleans it up."""


FILES = (ck.MODEL_FILE, ck.CONFIG_FILE, ck.OPTIMIZER_FILE, ck.STATE_FILE)
WRITE_POINTS = (["begin"] + [f"{when}:{name}" for name in FILES for when in ("mid", "after")]
                + ["after:tokenizer", "synced", "swapped-out", "swapped-in"])


def save_numbered(folder, n, tokenizer):
    return ck.save_checkpoint(folder, TinyModel(n), optimizer=TinyOptimizer(),
                              tokenizer=tokenizer, step=n)


@pytest.mark.parametrize("point", WRITE_POINTS)
def test_a_crash_at_any_point_of_a_save_leaves_a_loadable_checkpoint(tmp_path, monkeypatch,
                                                                     point):
    from tinygrad_llm.data import CharTokenizer
    folder, tok = tmp_path / "ckpt", CharTokenizer("abc")
    save_numbered(folder, 1, tok)

    def die_at(p):
        if p == point:
            raise Killed
    monkeypatch.setattr(ck, "_fault_hook", lambda this_save: die_at)
    with pytest.raises(Killed):
        save_numbered(folder, 2, tok)
    monkeypatch.undo()
    expected = 2 if point == "swapped-in" else 1    # the new one only once it is in place
    model = TinyModel(9)
    info = ck.load_checkpoint(folder, model, optimizer=TinyOptimizer())
    assert info["state"]["step"] == expected
    assert_same(model.state_dict(), TinyModel(expected).state_dict())
    assert ck.load_tokenizer(folder).chars == tok.chars
    save_numbered(folder, 3, tok)                   # the next save tidies up after the crash
    assert ck.load_checkpoint(folder, model)["state"]["step"] == 3
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno
    folder = tmp_path / "ckpt"
    save_numbered(folder, 1, None)
    before = (folder / ck.MODEL_FILE).read_bytes()
    monkeypatch.setenv(ck.FAULT_ENV, "mid:optimizer.safetensors:fail")
    with pytest.raises(ck.CheckpointWriteError) as err:
        save_numbered(folder, 2, None)
    assert err.value.errno == errno.ENOSPC
    assert isinstance(err.value, OSError)
    assert f"could not write the checkpoint {folder}: No space left on device" in str(err.value)
    assert "previous checkpoint there, if any, is unchanged" in str(err.value)
    assert (folder / ck.MODEL_FILE).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]           # no half-written .tmp left


def test_fault_hook_counts_saves_and_rejects_a_bad_spec(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ck, "_saves_started", 0)
    monkeypatch.setenv(ck.FAULT_ENV, "after:config.json:pause=0@2")
    save_numbered(tmp_path / "a", 1, None)
    assert capsys.readouterr().err == ""
    save_numbered(tmp_path / "a", 2, None)                     # the 2nd save pauses (0 s)
    assert capsys.readouterr().err == "checkpoint fault: pausing at after:config.json\n"
    monkeypatch.setenv(ck.FAULT_ENV, "after:config.json:explode")
    with pytest.raises(ValueError, match=ck.FAULT_ENV):
        save_numbered(tmp_path / "b", 1, None)


def test_missing_checkpoint_and_a_file_instead_of_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        ck.read_checkpoint(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        ck.read_checkpoint(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        ck.read_checkpoint(tmp_path / "empty")
    assert not ck.has_checkpoint(tmp_path / "nothing") and ck.has_checkpoint(tmp_path / "empty")
