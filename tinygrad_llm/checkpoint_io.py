"""The files of a checkpoint, low level: safetensors array files, JSON files, fsync, the
write error and the fault-injection hook. ``checkpoint.py`` builds the crash-safe checkpoint
folder on these (its docstring describes the folder, the atomic swap and the fault points).

Writers take ``fault``, the function :func:`_fault_hook` returns: it is called half-way through
each file (``mid:<file>``) and once it is closed (``after:<file>``).
"""
import errno
import json
import os
import signal
import sys
import time

import numpy as np

FAULT_ENV = "TINYGRAD_LLM_CHECKPOINT_FAULT"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, ...); the previous one is unchanged."""


# ----- fault injection (see checkpoint.py's docstring) ----------------------------------------

def _parse_fault(spec):
    """(point, action, argument, n) from ``<point>:<action>[=<arg>][@<n>]``."""
    head, _, nth = spec.partition("@")
    point, _, action = head.rpartition(":")
    action, _, arg = action.partition("=")
    if not point or action not in ("die", "pause", "fail") or (nth and not nth.isdigit()):
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected <point>:die, <point>:pause=<seconds> "
                         f"or <point>:fail, optionally followed by @<n>")
    return point, action, float(arg or 0), int(nth) if nth else None


def _fault_hook(this_save):
    """The function the writer calls at each point of the ``this_save``-th checkpoint this
    process saves (counted from 1): a no-op unless FAULT_ENV is set."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return lambda point: None
    target, action, arg, nth = _parse_fault(spec)

    def hook(point):
        if point != target or (nth is not None and nth != this_save):
            return
        if action == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "pause":
            sys.stderr.write(f"checkpoint fault: pausing at {point}\n")
            sys.stderr.flush()
            time.sleep(arg)
        else:
            raise OSError(errno.ENOSPC, f"No space left on device (simulated at {point})")
    return hook


# ----- files: safetensors, JSON, fsync -------------------------------------------------------

def _write_bytes(path, data, fault=None):
    """Write ``data`` to ``path``; ``fault`` is called half-way and at the end. (The caller
    fsyncs: save_checkpoint syncs the whole folder once, before the swap.)"""
    name = os.path.basename(path)
    with open(path, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if fault is not None:
            f.flush()
            fault(f"mid:{name}")
        f.write(data[half:])
    if fault is not None:
        fault(f"after:{name}")


def save_arrays(path, arrays, metadata=None, fault=None):
    """Write name -> array to a safetensors file (NumPy arrays; CuPy arrays are copied)."""
    from safetensors.numpy import save
    from .backend import to_numpy
    # np.asarray(order="C"), not np.ascontiguousarray, which turns 0-d arrays into 1-d ones
    clean = {k: np.asarray(to_numpy(v), order="C") for k, v in arrays.items()}
    _write_bytes(os.fspath(path), save(clean, metadata=metadata), fault)


def load_arrays(path):
    """Read a safetensors file into a dict of NumPy arrays; ValueError names a bad file."""
    from safetensors.numpy import load_file
    if path.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")):
        raise ValueError(f"{path}: refusing to load a pickle-based file (it can run arbitrary "
                         f"code); convert it to safetensors first")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        return load_file(path)
    except Exception as e:  # safetensors raises its own error types for bad headers/offsets
        raise ValueError(f"{path} is not a valid safetensors file (truncated or corrupted?): "
                         f"{e}") from None


def _write_json(path, obj, fault=None):
    _write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"), fault)


def _read_json(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupted?): {e}") from None


def _fsync_dir(folder):
    """Make a folder's entries (new files, renames) durable; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_folder(folder):
    """fsync every file under ``folder`` and the folders themselves."""
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(root)
