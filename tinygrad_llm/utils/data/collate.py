"""default_collate / default_convert: torch.utils.data's rules for turning samples into a batch.

    Tensors                      stacked along a new first dim (same shapes, else RuntimeError;
                                 differentiably when a sample requires grad)
    NumPy arrays / scalars       as Tensors of the same dtype, stacked
    Python float / int / bool    a 1-D Tensor of float64 / int64 / bool (torch's dtypes)
    str, bytes                   the list, unchanged
    dict (Mapping)               a dict with each key collated
    namedtuple                   the same namedtuple with each field collated
    tuple, list                  a list with each position collated (torch returns a list
                                 for tuples too); samples of unequal lengths: RuntimeError
"""
from collections.abc import Mapping, Sequence

import numpy as np

from ... import backend
from ...tensor import Tensor

_UNSUPPORTED = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                "lists; found {}")


def _stack(arrays):
    shapes = [tuple(a.shape) for a in arrays]
    for k, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(shapes[0])} at entry 0 and {list(shape)} at entry {k}")
    xp = backend.get_array_module(*arrays)
    return Tensor._wrap(xp.stack(arrays))


def default_collate(batch):
    """Stack a list of samples into a batch of Tensors, keeping the samples' structure (see
    the module docstring)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        stacked = _stack([t.data for t in batch])
        if any(t.requires_grad for t in batch):     # keep the graph, as torch.stack does
            from ...ops import stack
            return stack(batch)
        return stacked
    if isinstance(elem, np.ndarray) or backend.is_cupy_array(elem):
        if elem.dtype.kind in "SUOV":
            raise TypeError(_UNSUPPORTED.format(elem.dtype))
        return _stack(list(batch))
    if isinstance(elem, np.generic):
        if elem.dtype.kind in "SUOV":
            raise TypeError(_UNSUPPORTED.format(elem.dtype))
        return Tensor._wrap(np.array(batch))
    if isinstance(elem, float):
        return Tensor._wrap(np.array(batch, dtype=np.float64))
    if isinstance(elem, int):                     # bool too: all bools give a bool tensor
        arr = np.array(batch)
        return Tensor._wrap(arr.astype(np.int64) if arr.dtype.kind in "iu" else arr)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        collated = {key: default_collate([sample[key] for sample in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:                        # a Mapping that cannot be built from a dict
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):   # namedtuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        if isinstance(elem, tuple):
            return fields
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(_UNSUPPORTED.format(type(elem)))


def default_convert(data):
    """What the DataLoader yields with batch_size=None: arrays and NumPy scalars become
    Tensors, containers are converted element by element, everything else is unchanged."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)) or backend.is_cupy_array(data):
        if data.dtype.kind in "SUOV":
            return data
        return Tensor._wrap(np.asarray(data) if isinstance(data, np.generic) else data)
    if isinstance(data, Mapping):
        converted = {key: default_convert(data[key]) for key in data}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
