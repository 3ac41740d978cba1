"""DataLoader and collate functions (PyTorch's names and behaviour, NumPy arrays out).

A dataset is anything with ``__len__`` and ``__getitem__``; if it also has
``__getitems__(indices)`` (PyTorch 2's batched-fetch hook) the loader fetches a whole batch in
one call. Shuffling draws a fresh permutation from a ``numpy.random.Generator`` at the start
of every epoch, so a loader built with the same seed yields the same batches in the same
order, epoch after epoch.
"""
import math
import numbers

import numpy as np

from .tokenizer_base import pad_sequences


class ArrayDataset:
    """Rows of equally long arrays: ``ArrayDataset(X, y)[i] == (X[i], y[i])``
    (PyTorch's ``TensorDataset``)."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        arrays = [np.asarray(a) for a in arrays]
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"ArrayDataset arrays have different lengths {lengths}")
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


class Subset:
    """The items of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]


def default_collate(batch):
    """Stack a list of samples into arrays, keeping the samples' structure.

    Tuples/lists of fields give a tuple of stacked fields, dicts a dict, numbers and
    equal-shape arrays an array (numbers of Python int become int64), strings a list.
    Sequences of different lengths are an error: use :class:`PadCollate`.
    """
    first = batch[0]
    if isinstance(first, dict):
        return {k: default_collate([sample[k] for sample in batch]) for k in first}
    if isinstance(first, tuple):
        return tuple(default_collate(list(field)) for field in zip(*batch))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, bool):
        return np.array(batch, dtype=bool)
    if isinstance(first, numbers.Integral):
        return np.array(batch, dtype=np.int64)
    shapes = {np.shape(x) for x in batch}
    if len(shapes) > 1:
        raise ValueError(f"cannot stack samples of shapes {sorted(shapes)}; pad them with "
                         "PadCollate")
    return np.stack([np.asarray(x) for x in batch])


class PadCollate:
    """Collate dict samples whose sequence fields have different lengths.

    Each sequence field (list or 1-D array) is padded to the longest in the batch (or to
    ``max_length``) with ``pad_values[key]`` (default ``pad_value``; use -100 for ``labels``,
    the loss's ignore index). An ``attention_mask`` (1 = real token) is added for
    ``input_ids`` and a ``decoder_attention_mask`` for ``decoder_input_ids``, unless the
    samples carry their own. Scalar fields are stacked.
    """

    MASKS = {"input_ids": "attention_mask", "decoder_input_ids": "decoder_attention_mask"}

    def __init__(self, pad_value=0, pad_values=None, max_length=None, padding_side="right"):
        self.pad_value = pad_value
        self.pad_values = {"labels": -100} if pad_values is None else dict(pad_values)
        self.max_length = max_length
        self.padding_side = padding_side

    def __call__(self, batch):
        if not isinstance(batch[0], dict):
            raise TypeError(f"PadCollate expects dict samples, got {type(batch[0]).__name__}")
        out = {}
        for key in batch[0]:
            values = [sample[key] for sample in batch]
            if np.ndim(values[0]) == 1:
                pad = self.pad_values.get(key, self.pad_value)
                out[key], mask = pad_sequences(values, pad, max_length=self.max_length,
                                               padding_side=self.padding_side)
                mask_key = self.MASKS.get(key)
                if mask_key is not None and mask_key not in batch[0]:
                    out[mask_key] = mask
            else:
                out[key] = default_collate(values)
        return out


class DataLoader:
    """Iterate over a dataset in batches.

    ``shuffle`` draws a new permutation per epoch from ``generator`` (a
    ``numpy.random.Generator``; built from ``seed`` when not given). ``drop_last`` drops the
    final short batch. ``collate_fn`` turns a list of samples into a batch
    (:func:`default_collate` by default).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
                 seed=None, generator=None):
        if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.generator = np.random.default_rng(seed) if generator is None else generator

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def batch_indices(self):
        """The index arrays of one epoch (advances the generator when shuffling)."""
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        return [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def __iter__(self):
        getitems = getattr(self.dataset, "__getitems__", None)
        for idx in self.batch_indices():
            if getitems is not None:
                samples = getitems([int(i) for i in idx])
            else:
                samples = [self.dataset[int(i)] for i in idx]
            yield self.collate_fn(samples)
