"""The PyTorch-style programs of examples/torch_style/ run as written (``import tinygrad_llm as
torch`` and nothing else changed), and, with their import lines pointed back at PyTorch, give
the same losses under real torch from the same starting weights."""
import ast
import contextlib
import io
import os
import re
import sys
import types

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(REPO, "examples", "torch_style")
PROGRAMS = ["char_gpt", "polynomial_custom_function", "polynomial_dataloader"]

def _to_torch(source):
    """The program with its import lines pointed at PyTorch (tinygrad_llm -> torch)."""
    return re.sub(r"^(import|from) tinygrad_llm\b", r"\1 torch", source, flags=re.M)


def _load(name, use_torch=False):
    """Execute examples/torch_style/<name>.py as a module (or its torch twin)."""
    path = os.path.join(FOLDER, f"{name}.py")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    if use_torch:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)               # tiny ops: a second thread only waits (2 cores)
        source = _to_torch(source)
    module_name = f"torch_style_{name}_{'torch' if use_torch else 'tl'}"
    module = types.ModuleType(module_name)
    module.__file__ = path
    sys.modules[module_name] = module                  # dataclasses look their module up
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = fn(*args)
    return result, out.getvalue()


@pytest.mark.parametrize("name", PROGRAMS)
def test_programs_name_tinygrad_llm_only_in_imports(name):
    """Without torch: once the imports are pointed at torch, no other mention is left, so the
    program is a PyTorch program."""
    with open(os.path.join(FOLDER, f"{name}.py"), encoding="utf-8") as f:
        tree = ast.parse(_to_torch(f.read()))
    docstring = ast.get_docstring(tree, clean=False)
    leftovers = [node for node in ast.walk(tree)
                 if (isinstance(node, ast.Name) and "tinygrad" in node.id)
                 or (isinstance(node, ast.Constant) and isinstance(node.value, str)
                     and "tinygrad" in node.value and node.value != docstring)
                 or (isinstance(node, (ast.Import, ast.ImportFrom))
                     and "tinygrad" in ast.unparse(node))]
    assert leftovers == [], [ast.unparse(n) for n in leftovers]


# ----- the polynomial fit (custom autograd.Function, sin, RMSprop) ---------------------------

def test_polynomial_runs_unchanged_and_fits():
    result, printed = _quiet(_load("polynomial_custom_function").main, ["--steps", "300"])
    losses = result["losses"]
    assert len(losses) == 300 and all(np.isfinite(losses))
    assert losses[-1] < 0.05 * losses[0]
    assert "Result: y = " in printed and printed.count("\n") == 4


def test_polynomial_losses_match_torch():
    """100 steps: no random numbers are drawn, so both start alike. (Later, a and c sit at 0
    where their true gradient is 0, and RMSprop scales the float32 rounding noise of each
    framework up to full steps: the runs stay equally good but no longer step alike.)"""
    mine, _ = _quiet(_load("polynomial_custom_function").main, ["--steps", "100"])
    ref, _ = _quiet(_load("polynomial_custom_function", use_torch=True).main,
                    ["--steps", "100"])
    np.testing.assert_allclose(mine["losses"], ref["losses"], rtol=2e-5)
    np.testing.assert_allclose(mine["coefficients"], ref["coefficients"], rtol=1e-4,
                               atol=1e-5)


# ----- the character-level GPT (DataLoader, AdamW groups, clipping, save/load, sampling) ------

def test_char_gpt_runs_unchanged(tmp_path):
    import tinygrad_llm as tl
    program = _load("char_gpt")
    out = str(tmp_path / "ckpt.pt")
    result, printed = _quiet(program.main, ["--steps", "40", "--batch-size", "8",
                                            "--block-size", "16", "--out", out])
    losses = result["losses"]
    assert len(losses) == 40 and np.mean(losses[-5:]) < losses[0] - 0.5
    assert printed.rstrip("\n").endswith(result["sample"]) and os.path.exists(out)
    assert len(result["sample"]) == 61 and set(result["sample"]) <= set(program.TEXT)
    idx = tl.tensor([[1, 2, 3, 4]])
    trained, restored = result["model"], result["restored"]
    trained.eval()
    np.testing.assert_array_equal(restored(idx)[0].detach().numpy(),
                                  trained(idx)[0].detach().numpy())


def test_char_gpt_losses_match_torch():
    """Same weights (torch's initial ones copied over), same batches (one fixed order given
    as sampler=), no dropout: the two training runs give the same losses."""
    import torch
    mine, ref = _load("char_gpt"), _load("char_gpt", use_torch=True)
    config = dict(block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)
    ds_mine, ds_ref = mine.CharDataset(mine.TEXT, 16), ref.CharDataset(ref.TEXT, 16)
    torch.manual_seed(0)
    ref_model = ref.GPT(ref.GPTConfig(vocab_size=ds_ref.vocab_size, **config))
    model = mine.GPT(mine.GPTConfig(vocab_size=ds_mine.vocab_size, **config))
    model.load_state_dict({k: v.detach().numpy() for k, v in ref_model.state_dict().items()})
    order = np.random.default_rng(0).permutation(len(ds_mine)).tolist()

    def run(program, dataset, net):
        loader = program.DataLoader(dataset, batch_size=8, sampler=order, drop_last=True)
        optimizer = net.configure_optimizers(weight_decay=0.1, learning_rate=3e-3,
                                             betas=(0.9, 0.95))
        return program.train(net, loader, optimizer, max_steps=15)

    np.testing.assert_allclose(run(mine, ds_mine, model), run(ref, ds_ref, ref_model),
                               rtol=2e-4)


# ----- the polynomial fit with datasets and loaders (random_split, Adagrad, save/load) ---------

def test_polynomial_dataloader_runs_unchanged(tmp_path):
    out = str(tmp_path / "best.pt")
    result, printed = _quiet(_load("polynomial_dataloader").main,
                             ["--epochs", "6", "--out", out])
    history = result["history"]
    assert len(history) == 6 and history[-1][1] < 0.5 * history[0][1]
    assert os.path.exists(out) and "Result: y = " in printed
    model = result["model"]                       # the best weights, loaded back
    assert model[0].weight.dtype == np.float32 and model[0].weight.shape == (1, 3)


def test_polynomial_dataloader_matches_torch(tmp_path):
    """Same weights, the same fixed split and batch order: the same epoch losses."""
    import torch
    mine, ref = _load("polynomial_dataloader"), _load("polynomial_dataloader", use_torch=True)
    torch.manual_seed(0)
    ref_model, model = ref.build_model(), mine.build_model()
    model.load_state_dict({k: v.detach().numpy() for k, v in ref_model.state_dict().items()})
    order = np.random.default_rng(0).permutation(2000).tolist()
    train_idx, val_idx = order[:1600], order[1600:]

    def run(program, net, tag):
        subset = sys.modules[program.random_split.__module__].Subset   # the library's own
        dataset = program.make_dataset()
        train = program.DataLoader(subset(dataset, train_idx), batch_size=64)
        val = program.DataLoader(subset(dataset, val_idx), batch_size=256)
        return program.fit(net, train, val, epochs=4, lr=0.05, path=str(tmp_path / tag))

    mine_history, _ = _quiet(run, mine, model, "mine.pt")
    ref_history, _ = _quiet(run, ref, ref_model, "ref.pt")
    np.testing.assert_allclose(mine_history, ref_history, rtol=1e-5)
