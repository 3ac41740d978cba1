"""``save`` / ``load`` with torch.save's habits, on safetensors instead of pickle.

    tl.save(model.state_dict(), "model.safetensors")
    model.load_state_dict(tl.load("model.safetensors"))
    tl.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 10}, path)

What can be saved: Tensors (and Parameters), NumPy/CuPy arrays, and any nesting of dicts,
OrderedDicts, lists and tuples holding them or Python scalars (bool, int, float, str, None).
That covers model and optimizer state_dicts and the usual checkpoint dict. Anything else (a
whole Module, a lambda, a class instance) is a TypeError naming where it sits, because storing
it would need pickle.

The file is one ordinary safetensors file: every array under a readable name (its path in
the object, e.g. ``model.lm_head.weight``), and the structure (container types, dict keys,
scalars, which leaves were Tensors, their requires_grad and device) as JSON in the
safetensors metadata under ``tinygrad_llm.structure``. Any safetensors reader can open the
arrays; ``load`` of a plain safetensors file written elsewhere (``safetensors.torch``,
Hugging Face) gives a dict name -> Tensor.

Writes are atomic: the bytes go to a temporary file beside the target, are flushed to disk,
and the temporary file is renamed over the target, so a crash never leaves half a file.
The same Tensor saved twice is stored once and loads as one object (as torch.save); views
that share memory with other tensors are stored as separate copies.

``load`` never unpickles. A PyTorch ``.pt``/``.pth`` file (a zip or pickle) is refused with
a ValueError that says how to convert it.
"""
import json
import os
import tempfile
from collections import OrderedDict

import numpy as np

from . import backend
from .tensor import Tensor

FORMAT = "tinygrad_llm.save"
FORMAT_VERSION = "1"
STRUCTURE_KEY = "tinygrad_llm.structure"

_CONVERT_HINT = (
    "tinygrad_llm never unpickles (unpickling can run arbitrary code). Convert the file once "
    "with PyTorch, e.g. for a state_dict: `from safetensors.torch import save_file; "
    "save_file(torch.load(path, weights_only=True), 'model.safetensors')`, or for nested "
    "objects convert the tensors to NumPy (`t.numpy()`) and save them with "
    "`tinygrad_llm.save`; then load the new file here.")


# ----- save ----------------------------------------------------------------------------------

class _Encoder:
    """Turns a nested object into (JSON structure, {name: NumPy array})."""

    def __init__(self):
        self.arrays = {}
        self.seen = {}        # id(tensor or array) -> its array name (store shared ones once)
        self.keep_alive = []  # the objects behind the ids in ``seen``

    def name_for(self, path):
        name = path or "tensor"
        k = 1
        while name in self.arrays:
            k += 1
            name = f"{path or 'tensor'}#{k}"
        return name

    def store(self, obj, array, path):
        """The name under which ``array`` is stored (once per object)."""
        if id(obj) in self.seen:
            return self.seen[id(obj)]
        name = self.name_for(path)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"tinygrad_llm.save: cannot store an array of dtype {array.dtype} "
                            f"at {path or '<root>'!r} (only bool, integer and float arrays)")
        # np.asarray(order="C") and not np.ascontiguousarray, which makes 0-d arrays 1-d
        self.arrays[name] = np.asarray(backend.to_numpy(array), order="C")
        self.seen[id(obj)] = name
        self.keep_alive.append(obj)
        return name

    def encode(self, obj, path=""):
        if isinstance(obj, Tensor):
            from .nn.module import Parameter
            return {"tensor": self.store(obj, obj.data, path),
                    "requires_grad": bool(obj.requires_grad),
                    "parameter": isinstance(obj, Parameter), "device": obj.device}
        if isinstance(obj, np.ndarray) or backend.is_cupy_array(obj):
            return {"ndarray": self.store(obj, obj, path), "device": backend.device_of(obj)}
        if isinstance(obj, np.generic):
            return {"npscalar": self.store(obj, np.asarray(obj), path)}
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                items.append([_encode_scalar(key, path, "a dict key"),
                              self.encode(value, f"{path}.{key}" if path else str(key))])
            return {"dict": items, "ordered": isinstance(obj, OrderedDict)}
        if type(obj) in (list, tuple):
            kind = type(obj).__name__
            return {kind: [self.encode(v, f"{path}.{i}" if path else str(i))
                           for i, v in enumerate(obj)]}
        return _encode_scalar(obj, path, "a value")


def _encode_scalar(x, path, what):
    if x is None:
        return {"none": None}
    if isinstance(x, bool):
        return {"bool": x}
    if isinstance(x, int):
        return {"int": x}
    if isinstance(x, float):
        return {"float": repr(x)}                  # repr keeps nan, inf and every digit
    if isinstance(x, str):
        return {"str": x}
    hint = ""
    if hasattr(x, "state_dict"):
        hint = ("; save its state_dict() instead and restore it with "
                "load_state_dict(tinygrad_llm.load(path))")
    raise TypeError(f"tinygrad_llm.save cannot store {what} of type {type(x).__name__} at "
                    f"{path or '<root>'!r} (only Tensors, arrays, dicts, lists, tuples, bool, "
                    f"int, float, str and None, since nothing is pickled){hint}")


def _safetensors_bytes(obj):
    from safetensors.numpy import save
    enc = _Encoder()
    structure = enc.encode(obj)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                STRUCTURE_KEY: json.dumps(structure)}
    return save(enc.arrays, metadata=metadata)


def save(obj, f):
    """Write ``obj`` (Tensors, arrays, nested dicts/lists/tuples, scalars) to ``f``: a path
    (written atomically) or a binary file object. See the module docstring."""
    data = _safetensors_bytes(obj)
    if hasattr(f, "write"):
        f.write(data)
        return
    path = os.fspath(f)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ----- load ----------------------------------------------------------------------------------

def _read(f):
    """(safetensors header, {name: NumPy array}, a name for errors) of a path or file object.

    A path is read with safetensors' lazy reader, one array at a time (no second copy of the
    whole file in memory); a file object is read whole."""
    from safetensors import safe_open
    from safetensors.numpy import load as load_bytes
    if hasattr(f, "read"):
        data, source = f.read(), getattr(f, "name", "<file object>")
        header = _parse_header(data, source)
        return header, _checked(source, lambda: load_bytes(bytes(data))), source
    path = os.fspath(f)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    with open(path, "rb") as fh:
        head = fh.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else -1
        # the JSON header if the size is plausible, else enough bytes to recognise a pickle
        head += fh.read(size if 0 < size <= os.path.getsize(path) - 8 else 64)
    header = _parse_header(head, path)

    def read_all():
        with safe_open(path, framework="numpy") as st:
            return {k: st.get_tensor(k) for k in st.keys()}
    return header, _checked(path, read_all), path


def _checked(source, read):
    try:
        arrays = read()
    except Exception as e:             # safetensors raises its own types for bad offsets
        raise ValueError(f"{source} is not a valid safetensors file (truncated or corrupted?): "
                         f"{e}") from None
    return {k: (a if a.flags.writeable else a.copy()) for k, a in arrays.items()}


def _parse_header(data, source):
    """The safetensors JSON header; ValueError for pickles and other non-safetensors files."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 10 else -1
    if not (0 < size <= len(data) - 8 and data[8:9] == b"{"):
        # not safetensors; a zip (torch.save's format) or a pickle (protocol 2+) get advice
        is_zip = data[:4] == b"PK\x03\x04"
        is_pickle = data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
        if is_zip or is_pickle:
            kind = "a zip archive" if is_zip else "a pickle"
            raise ValueError(f"{source} is {kind}, PyTorch's torch.save format. "
                             f"{_CONVERT_HINT}")
        raise ValueError(f"{source} is not a safetensors file (bad header: truncated, or "
                         f"another format?)")
    try:
        return json.loads(data[8:8 + size])
    except ValueError as e:
        raise ValueError(f"{source} has a corrupted safetensors header: {e}") from None


def _target_device(map_location, saved_device, array):
    """(device, array) after applying map_location, torch.load's rules."""
    if map_location is None:
        return saved_device, array
    if callable(map_location):                        # fn(storage, location) -> storage
        moved = map_location(array, saved_device)
        moved = moved.data if isinstance(moved, Tensor) else moved
        return backend.device_of(moved), moved
    if isinstance(map_location, dict):
        table = {_device_name(k): v for k, v in map_location.items()}
        return _device_name(table.get(saved_device, saved_device)), array
    return _device_name(map_location), array


def _device_name(device):
    name = str(getattr(device, "type", device)).lower()
    return "cuda" if name.startswith("cuda") or name == "gpu" else name


class _Decoder:
    def __init__(self, arrays, map_location, source):
        self.arrays, self.map_location, self.source = arrays, map_location, source
        self.made = {}                                 # array name -> object (shared ones)

    def array(self, name, saved_device):
        if name not in self.arrays:
            raise ValueError(f"{self.source}: the structure names array {name!r}, which the "
                             f"file does not hold (corrupted file?)")
        device, arr = _target_device(self.map_location, saved_device, self.arrays[name])
        if device == "cuda" and not backend.gpu_available():
            raise RuntimeError(
                f"{self.source}: attempting to load a tensor saved on a CUDA device, but "
                f"tinygrad_llm.cuda.is_available() is False. On a CPU-only machine pass "
                f"map_location='cpu' to tinygrad_llm.load.")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"map_location: unknown device {device!r}; expected 'cpu' or "
                             f"'cuda'")
        return backend.to_device(arr, device)

    def decode(self, node):
        kind = next(iter(node))
        if kind == "tensor":
            name = node["tensor"]
            if name not in self.made:
                self.made[name] = self.tensor(name, node)
            return self.made[name]
        if kind == "ndarray":
            name = node["ndarray"]
            if name not in self.made:
                self.made[name] = self.array(name, node.get("device", "cpu"))
            return self.made[name]
        if kind == "npscalar":
            return self.array(node["npscalar"], "cpu")[()]
        if kind == "dict":
            items = [(self.decode(k), self.decode(v)) for k, v in node["dict"]]
            return OrderedDict(items) if node.get("ordered") else dict(items)
        if kind == "list":
            return [self.decode(v) for v in node["list"]]
        if kind == "tuple":
            return tuple(self.decode(v) for v in node["tuple"])
        if kind == "float":
            return float(node["float"])
        if kind in ("int", "bool", "str"):
            return node[kind]
        if kind == "none":
            return None
        raise ValueError(f"{self.source}: unknown entry {kind!r} in the structure (written by "
                         f"a newer version?)")

    def tensor(self, name, node):
        arr = self.array(name, node.get("device", "cpu"))
        if node.get("parameter"):
            from .nn.module import Parameter
            return Parameter(arr, requires_grad=node.get("requires_grad", True))
        t = Tensor(arr)
        return t.requires_grad_(True) if node.get("requires_grad") else t


def load(f, map_location=None, weights_only=None, mmap=None):
    """Read what ``save`` wrote (or any safetensors file: a dict name -> Tensor).

    ``map_location``: where the tensors go, as torch.load: None (the device they were saved
    from), a device ('cpu', 'cuda'), a dict {saved device: device}, or a function
    ``fn(array, saved_device) -> array``. ``weights_only`` and ``mmap`` are accepted for
    compatibility and change nothing: nothing is ever unpickled, so every load is as safe
    as torch's weights_only=True. Pickle files (PyTorch .pt/.pth) are refused with a
    ValueError that says how to convert them.
    """
    header, arrays, source = _read(f)
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        # a plain safetensors file: name -> Tensor, in the file's order
        decoder = _Decoder(arrays, map_location, source)
        names = [k for k in header if k != "__metadata__"]
        return {k: decoder.tensor(k, {"device": "cpu"}) for k in names}
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{source}: format version {metadata.get('format_version')!r} is not "
                         f"supported (this version reads {FORMAT_VERSION})")
    try:
        structure = json.loads(metadata[STRUCTURE_KEY])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{source}: missing or corrupted structure metadata: {e}") from None
    return _Decoder(arrays, map_location, source).decode(structure)


__all__ = ["save", "load"]
