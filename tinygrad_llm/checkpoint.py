"""Checkpoints: a folder of safetensors weights and JSON, written atomically, never pickled.

    <folder>/
        model.safetensors      the model's state_dict (name -> array)
        config.json            {"format": ..., "format_version": 1, "model_config": {...}}
        training_state.json    step, optimizer/scheduler/RNG state (arrays stored apart)
        optimizer.safetensors  the arrays of the optimizer state (moments, ...)
        tokenizer.json         the tokenizer, when one is given (or tokenizer/ for byte-level
                               BPE: GPT-2's vocab.json + merges.txt)

Atomic writes: everything is written into ``<folder>.tmp``, each file fsynced, the folder
fsynced, and only then swapped in (``<folder>`` -> ``<folder>.old``, ``<folder>.tmp`` ->
``<folder>``, fsync the parent folder, delete ``.old``). A crash at any moment (SIGKILL, power
loss) leaves the previous checkpoint intact in ``<folder>`` or, for the instant between the
two renames, in ``<folder>.old``, which ``load_checkpoint`` falls back to. A write that fails
(full disk, file-size limit, permissions) removes the half-written ``.tmp`` and raises
:class:`CheckpointWriteError`, an ``OSError`` whose message names the folder and says the
previous checkpoint is unchanged.

Fault injection, for testing the above: the environment variable
``TINYGRAD_LLM_CHECKPOINT_FAULT="<point>:<action>[@<n>]"`` makes the writer stop at a point of
the n-th checkpoint this process saves (every checkpoint without ``@n``). Points, in order:
``begin`` (empty ``.tmp`` made), ``mid:<file>`` (half of ``<file>`` written, e.g.
``mid:model.safetensors``), ``after:<file>`` (``<file>`` written and closed; ``after:tokenizer``
for the tokenizer), ``synced`` (every file on disk, nothing swapped yet), ``swapped-out`` (the
previous checkpoint moved to ``.old``, the new one not in place), ``swapped-in`` (the new one
in place, ``.old`` not yet deleted). Actions: ``die`` (SIGKILL this process), ``pause=<s>``
(print ``checkpoint fault: pausing at <point>`` to stderr and sleep s seconds) and ``fail``
(raise ``OSError(ENOSPC)``, a full disk).

Loading validates everything before changing anything: a truncated or corrupted file, a missing,
unexpected or mis-shaped key gives a ValueError naming the file and the keys, and the model is
left untouched.

The files themselves (safetensors arrays, JSON, fsync, the fault hook) are written and read by
checkpoint_io.py; ``save_arrays``, ``load_arrays``, ``CheckpointWriteError`` and ``FAULT_ENV``
are importable from here too.
"""
import os
import shutil

import numpy as np

from .checkpoint_io import (FAULT_ENV, CheckpointWriteError, _fault_hook,  # noqa: F401
                            _fsync_dir, _fsync_folder, _read_json, _write_json, load_arrays,
                            save_arrays)

FORMAT = "tinygrad_llm.checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "training_state.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_DIR = "tokenizer"

_saves_started = 0          # checkpoints this process began to write (for ``@n``)


# ----- nested state with arrays inside -------------------------------------------------------

def split_arrays(obj, prefix=""):
    """Separate a nested state (dicts, lists, numbers, arrays) into JSON and named arrays.

    Each array is replaced by {"__array__": key}; returns (json_part, {key: array}).
    """
    arrays = {}

    def walk(x, path):
        if isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
            arrays[path] = x
            return {"__array__": path}
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(x)]
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"cannot store a {type(x).__name__} at {path!r} in a checkpoint")

    return walk(obj, prefix), arrays


def join_arrays(obj, arrays, source="checkpoint"):
    """The inverse of split_arrays."""
    def walk(x):
        if isinstance(x, dict):
            if set(x) == {"__array__"}:
                key = x["__array__"]
                if key not in arrays:
                    raise ValueError(f"{source}: array {key!r} is missing")
                return arrays[key]
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x
    return walk(obj)


# ----- save and load -------------------------------------------------------------------------

def save_checkpoint(folder, model, *, optimizer=None, scheduler=None, tokenizer=None,
                    model_config=None, step=0, rng_state=None, extra=None):
    """Write a checkpoint folder atomically (see the module docstring).

    ``model`` needs ``state_dict()``; ``optimizer``/``scheduler`` need ``state_dict()``;
    ``tokenizer`` needs ``to_json()`` (a str) or ``save(path)``; ``rng_state`` and ``extra``
    are JSON-able dicts (arrays inside are stored in the optimizer file). A failed write raises
    :class:`CheckpointWriteError` and leaves the previous checkpoint as it was.
    """
    global _saves_started
    _saves_started += 1
    fault = _fault_hook(_saves_started)
    folder = os.path.abspath(folder)
    tmp = folder + ".tmp"
    try:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        fault("begin")
        _write_files(tmp, model, optimizer, scheduler, tokenizer, model_config, step,
                     rng_state, extra, fault)
        _fsync_folder(tmp)
        fault("synced")
        _swap_in(tmp, folder, fault)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = e.strerror or str(e)
        err = CheckpointWriteError(
            f"could not write the checkpoint {folder}: {reason}"
            f"{f' ({e.filename})' if e.filename else ''}; the previous checkpoint there, if "
            f"any, is unchanged")
        err.errno = e.errno
        raise err from e
    return folder


def _write_files(tmp, model, optimizer, scheduler, tokenizer, model_config, step, rng_state,
                 extra, fault):
    save_arrays(os.path.join(tmp, MODEL_FILE), dict(model.state_dict()),
                metadata={"format": FORMAT}, fault=fault)
    _write_json(os.path.join(tmp, CONFIG_FILE), {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__, "model_config": model_config or {}}, fault)
    state = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "step": int(step),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng_state": rng_state, "extra": extra or {},
    }
    json_state, arrays = split_arrays(state)
    save_arrays(os.path.join(tmp, OPTIMIZER_FILE), arrays, metadata={"format": FORMAT},
                fault=fault)
    _write_json(os.path.join(tmp, STATE_FILE), json_state, fault)
    if tokenizer is not None:
        from .data import ByteLevelBPETokenizer
        if isinstance(tokenizer, ByteLevelBPETokenizer):
            tokenizer.save(os.path.join(tmp, TOKENIZER_DIR))
        else:
            tokenizer.save(os.path.join(tmp, TOKENIZER_FILE))
        fault("after:tokenizer")


def _swap_in(tmp, folder, fault):
    """``folder`` -> ``folder.old``, ``tmp`` -> ``folder``, delete ``.old`` (see the module
    docstring); a failed rename puts the previous checkpoint back."""
    old = folder + ".old"
    moved_out = False
    if os.path.exists(folder):
        if os.path.exists(old):
            shutil.rmtree(old)
        os.replace(folder, old)
        moved_out = True
    try:
        fault("swapped-out")
        os.replace(tmp, folder)
    except OSError:
        if moved_out:
            os.replace(old, folder)
        raise
    _fsync_dir(os.path.dirname(folder))
    fault("swapped-in")
    if os.path.exists(old):
        shutil.rmtree(old, ignore_errors=True)


def has_checkpoint(folder):
    """Whether ``folder`` (or its ``.old`` fallback) holds a checkpoint to resume from."""
    folder = os.path.abspath(folder)
    return os.path.isdir(folder) or os.path.isdir(folder + ".old")


def resolve_checkpoint(folder):
    """The folder to read: ``folder``, or ``folder.old`` if a crash interrupted the swap."""
    folder = os.path.abspath(folder)
    if os.path.isdir(folder):
        return folder
    if os.path.isdir(folder + ".old"):
        return folder + ".old"
    if os.path.exists(folder):
        raise NotADirectoryError(f"{folder} is a file, not a checkpoint folder")
    raise FileNotFoundError(f"no checkpoint folder at {folder}")


def read_checkpoint(folder):
    """Read and validate every file of a checkpoint; returns a dict (nothing is applied)."""
    folder = resolve_checkpoint(folder)
    config = _read_json(os.path.join(folder, CONFIG_FILE))
    if config.get("format") != FORMAT:
        raise ValueError(f"{folder}: not a tinygrad_llm checkpoint (format "
                         f"{config.get('format')!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{folder}: checkpoint format version {config.get('format_version')} "
                         f"is not supported (this version reads {FORMAT_VERSION})")
    weights = load_arrays(os.path.join(folder, MODEL_FILE))
    state = {}
    state_path = os.path.join(folder, STATE_FILE)
    if os.path.exists(state_path):
        arrays = load_arrays(os.path.join(folder, OPTIMIZER_FILE))
        state = join_arrays(_read_json(state_path), arrays, source=folder)
    tokenizer_path = None
    for name in (TOKENIZER_DIR, TOKENIZER_FILE):
        if os.path.exists(os.path.join(folder, name)):
            tokenizer_path = os.path.join(folder, name)
    return {"folder": folder, "config": config, "weights": weights, "state": state,
            "tokenizer_path": tokenizer_path}


def load_tokenizer(folder):
    """The tokenizer saved in a checkpoint folder (ValueError if there is none)."""
    from .data import load_tokenizer as load
    folder = resolve_checkpoint(folder)
    for name in (TOKENIZER_DIR, TOKENIZER_FILE):
        if os.path.exists(os.path.join(folder, name)):
            return load(os.path.join(folder, name))
    raise ValueError(f"{folder}: the checkpoint holds no tokenizer")


def check_state_dict(expected, weights, source):
    """ValueError listing missing, unexpected and mis-shaped keys (all of them, by name)."""
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    mis_shaped = [f"{k}: checkpoint {tuple(weights[k].shape)} vs model "
                  f"{tuple(expected[k].shape)}"
                  for k in expected if k in weights and tuple(weights[k].shape) != tuple(
                      expected[k].shape)]
    if missing or unexpected or mis_shaped:
        parts = []
        if missing:
            parts.append("missing keys: " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected keys: " + ", ".join(unexpected))
        if mis_shaped:
            parts.append("size mismatch for " + "; ".join(mis_shaped))
        raise ValueError(f"{source}: checkpoint does not match the model: " + " | ".join(parts))


def load_checkpoint(folder, model, *, optimizer=None, scheduler=None):
    """Load a checkpoint into ``model`` (and optimizer/scheduler); returns the training state.

    Everything is read and checked first; the objects change only if all of it is valid.
    """
    ckpt = read_checkpoint(folder)
    check_state_dict(model.state_dict(), ckpt["weights"], ckpt["folder"])
    state = ckpt["state"]
    if optimizer is not None and not (state and state.get("optimizer")):
        raise ValueError(f"{ckpt['folder']}: the checkpoint holds no optimizer state")
    if scheduler is not None and not (state and state.get("scheduler")):
        raise ValueError(f"{ckpt['folder']}: the checkpoint holds no scheduler state")
    model.load_state_dict(ckpt["weights"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    return ckpt


# ----- random generators of a model ----------------------------------------------------------

DEFAULT_GENERATOR = "<default>"


def _generators(model):
    """{name: numpy Generator} of every stream the model's modules draw from at train time:
    each module's ``generator`` attribute (Dropout, LSTM, MultiheadAttention), named after the
    first module that holds it (modules often share one), plus the default generator, which
    modules without their own draw from."""
    from .creation import default_generator
    found, seen = {DEFAULT_GENERATOR: default_generator.rng}, {id(default_generator.rng)}
    for name, module in model.named_modules():
        g = getattr(module, "generator", None)
        rng = getattr(g, "rng", g)                     # tinygrad_llm.Generator or NumPy's own
        if isinstance(rng, np.random.Generator) and id(rng) not in seen:
            seen.add(id(rng))
            found[name or "<root>"] = rng
    return found


def generator_states(model):
    """The state of every random stream of the model (see ``_generators``), as JSON-ready
    dicts: saved in checkpoints so that a resumed run draws the same dropout masks."""
    return {name: rng.bit_generator.state for name, rng in _generators(model).items()}


def set_generator_states(model, states):
    """Restore ``generator_states``; a stream missing on either side is a ValueError, before
    anything is changed."""
    gens = _generators(model)
    if set(gens) != set(states):
        raise ValueError(f"checkpoint random streams {sorted(states)} do not match the "
                         f"model's {sorted(gens)}")
    for name, rng in gens.items():
        rng.bit_generator.state = states[name]
