"""DistributedSampler: each rank's disjoint share of a dataset's indices (PyTorch's rules).

    num_samples = ceil(N / R)                 (drop_last=False: pad by repeating the start)
    num_samples = ceil((N - R) / R)           (drop_last=True and N % R != 0: drop the tail)
    order       = permutation(N) drawn from default_rng(seed + epoch), or 0..N-1
    rank r gets order[r], order[r + R], order[r + 2R], ...   (num_samples indices)

Call ``set_epoch(epoch)`` at the start of each epoch so every epoch is shuffled differently
(and identically on every rank). The DataLoader takes no sampler yet: iterate over
``sampler.subset()``, this epoch's shard of the dataset, with ``shuffle=False``.
"""
import math
import numbers

import numpy as np

from . import process_group as pg


class DistributedSampler:
    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None:
            num_replicas = pg.get_world_size()
        if rank is None:
            rank = pg.get_rank()
        if not isinstance(num_replicas, numbers.Integral) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive integer, got {num_replicas!r}")
        if not isinstance(rank, numbers.Integral) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank!r}")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, int(seed), drop_last, 0
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def indices(self):
        """This rank's indices for the current epoch (a NumPy int64 array)."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > n:                      # pad by repeating from the start
            repeats = math.ceil(self.total_size / max(n, 1))
            order = np.tile(order, repeats)[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(int(i) for i in self.indices())

    def __len__(self):
        return self.num_samples

    def subset(self):
        """This epoch's shard as a dataset (for DataLoader(..., shuffle=False))."""
        from ..data.loader import Subset
        return Subset(self.dataset, self.indices())
