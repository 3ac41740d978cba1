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
from .collate import default_collate, default_convert
from .dataloader import DataLoader, get_worker_info
from .dataset import (ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
                      random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "get_worker_info", "random_split"]
