"""torch.utils.data's names and behaviour: datasets, samplers, DataLoader, default_collate.

    ds = TensorDataset(x, y)                       # ds[i] == (x[i], y[i])
    train, val = random_split(ds, [0.9, 0.1], generator=tl.Generator().manual_seed(0))
    for xb, yb in DataLoader(train, batch_size=32, shuffle=True, drop_last=True):
        ...                                        # xb, yb: Tensors stacked along a new dim 0

The pieces, as in PyTorch:
    dataset        anything with __len__ and __getitem__ (map-style), or an IterableDataset
    sampler        yields dataset indices (SequentialSampler, RandomSampler, ...)
    batch_sampler  groups them into lists of batch_size indices (BatchSampler)
    collate_fn     turns the list of samples into a batch (default_collate)

Differences from PyTorch, on purpose:
- Loading runs in the calling process: ``num_workers``, ``pin_memory``, ``prefetch_factor``,
  ``persistent_workers`` and ``timeout`` are accepted and checked, and change nothing.
- Random order comes from this framework's generators (``generator=`` a tinygrad_llm
  Generator or a numpy.random.Generator; else the default generator, seeded by
  ``tinygrad_llm.manual_seed``): the same seed gives the same order here every time, but not
  the order PyTorch's generator would give.
- A batch of a TensorDataset is sliced from its tensors in one indexing per tensor, not
  stacked sample by sample (same values; the per-sample path is taken for a custom
  collate_fn or tensors that require grad).
"""
import bisect
import itertools
import math
import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor


# ----- datasets ------------------------------------------------------------------------------

class Dataset:
    """A map-style dataset: subclasses define __getitem__(index) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])

    def __class_getitem__(cls, item):              # Dataset[int] in type hints
        return cls


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define __iter__()."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class TensorDataset(Dataset):
    """Sample i is ``tuple(t[i] for t in tensors)``; every tensor has the same first size."""

    def __init__(self, *tensors):
        sizes = [t.shape[0] if t.ndim else None for t in tensors]
        if not tensors or None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"Size mismatch between tensors: TensorDataset needs tensors with "
                             f"the same first dimension, got shapes "
                             f"{[tuple(t.shape) for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def _batch(self, indices):
        """The collated batch of ``indices`` in one indexing per tensor (DataLoader's fast
        path; equal to default_collate of the samples)."""
        return [Tensor._wrap(t.data[indices]) for t in self.tensors]


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        inner = getattr(self.dataset, "__getitems__", None)
        if inner is not None:
            return inner([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[k - 1] if k > 0 else 0
        return self.datasets[k][idx - start]


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping Subsets of the given lengths, or of fractions of
    len(dataset) summing to 1 (the remainder goes round-robin to the first subsets, as torch)."""
    lengths = list(lengths)
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for frac in lengths:
            if not 0 <= frac <= 1:
                raise ValueError(f"Fraction {frac} is not between 0 and 1")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"Sum of input lengths {sum(lengths)} does not equal the length of "
                         f"the input dataset ({n})!")
    order = _rng(generator).permutation(n).tolist()
    return [Subset(dataset, order[stop - length:stop])
            for stop, length in zip(itertools.accumulate(lengths), lengths)]


# ----- samplers ------------------------------------------------------------------------------

def _rng(generator):
    """The numpy Generator behind ``generator`` (the default generator when None)."""
    if generator is None:
        from ..creation import default_generator
        return default_generator.rng               # looked up each time: manual_seed renews it
    if isinstance(generator, np.random.Generator):
        return generator
    rng = getattr(generator, "rng", None)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"generator must be a tinygrad_llm.Generator or numpy.random.Generator, "
                    f"got {type(generator).__name__}")


class Sampler:
    """Base class: subclasses define __iter__ (yielding indices) and usually __len__."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation per pass (or ``num_samples`` draws with ``replacement``)."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={replacement}")
        self.data_source, self.replacement = data_source, replacement
        self._num_samples, self.generator = num_samples, generator
        if not isinstance(self.num_samples, numbers.Integral) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, rng = len(self.data_source), _rng(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):          # whole permutations, then a part
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n).tolist()[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order, a new one per pass."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = indices, generator

    def __iter__(self):
        for i in _rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, numbers.Integral) or isinstance(num_samples, bool) \
                or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        w = backend.to_numpy(weights.data if isinstance(weights, Tensor) else weights)
        self.weights = np.asarray(w, dtype=np.float64).reshape(-1)
        if self.weights.ndim != 1 or (self.weights < 0).any() or self.weights.sum() <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        self.num_samples, self.replacement = int(num_samples), replacement
        self.generator = generator

    def __iter__(self):
        p = self.weights / self.weights.sum()
        draws = _rng(self.generator).choice(len(p), size=self.num_samples,
                                            replace=self.replacement, p=p)
        return iter(draws.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless
    ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# ----- collation (_collate.py) and the loader (_loader.py) -------------------------------------
from ._collate import default_collate, default_convert  # noqa: E402
from ._loader import DataLoader, get_worker_info  # noqa: E402

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "get_worker_info", "random_split"]
