"""tinygrad_llm.utils.data against torch.utils.data: default_collate's structures and dtypes,
DataLoader's batching, samplers, drop_last, batch_sampler, IterableDataset, random_split, and
the errors torch raises. Random orders are checked as permutations (the RNG streams differ);
everything deterministic is compared with torch value for value."""
from collections import namedtuple

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.utils import data
from tinygrad_llm.utils.data import (BatchSampler, DataLoader, Dataset, IterableDataset,
                                     RandomSampler, SequentialSampler, Subset,
                                     SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                                     default_collate, random_split)

Point = namedtuple("Point", "x y")


def _plain(batch):
    """A batch as nested Python/NumPy values, with ("tensor", dtype, values) for tensors."""
    if hasattr(batch, "detach"):
        arr = batch.detach().numpy() if hasattr(batch, "numpy") else batch
        return ("tensor", str(arr.dtype).replace("torch.", ""), arr.tolist())
    if isinstance(batch, dict):
        return {k: _plain(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return (type(batch).__name__,) + tuple(_plain(v) for v in batch)
    if isinstance(batch, (list, tuple)):
        return (type(batch).__name__, [_plain(v) for v in batch])
    return batch


SAMPLES = {
    "floats": [1.5, 2.0, -3.0],
    "ints": [1, 2, 3],
    "bools": [True, False, True],
    "strings": ["a", "bc", "d"],
    "numpy-f32": [np.float32(1.5), np.float32(2.5), np.float32(0)],
    "numpy-arrays": [np.arange(3.0), np.ones(3), np.zeros(3)],
    "numpy-int32": [np.arange(2, dtype=np.int32)] * 3,
    "tuples": [(1, 2.0), (3, 4.0), (5, 6.0)],
    "lists": [[1, 2], [3, 4], [5, 6]],
    "dicts": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}],
    "namedtuples": [Point(1, 2.0), Point(3, 4.0), Point(5, 6.0)],
    "nested": [{"ids": [1, 2], "y": (0.5, np.int64(3))}] * 3,
}


def _tensors_for(lib, key):
    """The same samples with Tensors of ``lib``."""
    if key == "tensors":
        return [lib.tensor([k, k + 1.0]) for k in range(3)]
    return [{"x": lib.tensor([k, 2 * k]), "y": lib.tensor(k)} for k in range(3)]


@pytest.mark.parametrize("key", list(SAMPLES))
def test_default_collate_matches_torch(key):
    torch_data = pytest.importorskip("torch.utils.data")
    assert _plain(default_collate(SAMPLES[key])) == _plain(torch_data.default_collate(
        SAMPLES[key]))


@pytest.mark.parametrize("key", ["tensors", "tensor-dicts"])
def test_default_collate_of_tensors_matches_torch(key):
    torch = pytest.importorskip("torch")
    mine = default_collate(_tensors_for(tl, key))
    ref = torch.utils.data.default_collate(_tensors_for(torch, key))
    assert _plain(mine) == _plain(ref)


def test_default_collate_by_hand():
    """Without torch: the documented rules."""
    floats = default_collate([1.5, 2.0])
    assert isinstance(floats, tl.Tensor) and floats.dtype == np.float64
    assert default_collate([1, 2]).dtype == np.int64
    assert default_collate([True, False]).dtype == np.bool_
    xs, ys = default_collate([(tl.tensor([1.0, 2.0]), 0), (tl.tensor([3.0, 4.0]), 1)])
    np.testing.assert_array_equal(xs.numpy(), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(ys.numpy(), [0, 1])
    assert default_collate(["a", "b"]) == ["a", "b"]
    p = default_collate([Point(1, 2), Point(3, 4)])
    assert isinstance(p, Point) and p.y.tolist() == [2, 4]


@pytest.mark.parametrize("batch, error, match", [
    ([tl.zeros(2), tl.zeros(3)], RuntimeError, r"equal size, but got \[2\] at entry 0 and "
                                               r"\[3\] at entry 1"),
    ([[1, 2], [3]], RuntimeError, "equal size"),
    ([object(), object()], TypeError, "batch must contain"),
])
def test_default_collate_errors(batch, error, match):
    with pytest.raises(error, match=match):
        default_collate(batch)


def _ds(lib):
    return lib.utils.data.TensorDataset(lib.arange(10).reshape(5, 2).float(), lib.arange(5))


@pytest.mark.parametrize("kwargs", [{"batch_size": 2}, {"batch_size": 2, "drop_last": True},
                                    {"batch_size": 5}, {"batch_size": 7},
                                    {"batch_size": None}, {"batch_size": 2,
                                                           "sampler": [4, 0, 3, 1, 2]}],
                         ids=str)
def test_loader_over_tensor_dataset_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    mine = DataLoader(TensorDataset(tl.tensor(np.arange(10.0, dtype=np.float32).reshape(5, 2)),
                                    tl.arange(5)), **kwargs)
    ref = torch.utils.data.DataLoader(_ds(torch), **kwargs)
    assert len(mine) == len(ref)
    assert [_plain(b) for b in mine] == [_plain(b) for b in ref]


def test_fast_tensor_dataset_path_equals_sample_by_sample():
    ds = TensorDataset(tl.randn(7, 3), tl.arange(7))
    fast = list(DataLoader(ds, batch_size=3))
    slow = list(DataLoader(ds, batch_size=3, collate_fn=lambda b: default_collate(b)))
    assert [_plain(b) for b in fast] == [_plain(b) for b in slow]


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": np.array([i, i * i], np.float32), "i": i}


def test_loader_over_map_dataset_with_batch_sampler_and_collate_fn():
    batches = list(DataLoader(Squares(5), batch_sampler=[[4, 1], [0, 2, 3]]))
    assert batches[0]["i"].tolist() == [4, 1] and batches[1]["x"].shape == (3, 2)
    sizes = [len(b) for b in DataLoader(Squares(5), batch_size=2, collate_fn=lambda b: b)]
    assert sizes == [2, 2, 1]


def test_shuffle_is_a_seeded_permutation_per_epoch():
    loader = DataLoader(Squares(20), batch_size=6, shuffle=True,
                        generator=tl.Generator().manual_seed(3))
    epochs = [np.concatenate([b["i"].numpy() for b in loader]) for _ in range(2)]
    assert sorted(epochs[0]) == list(range(20)) and sorted(epochs[1]) == list(range(20))
    assert epochs[0].tolist() != epochs[1].tolist()
    again = DataLoader(Squares(20), batch_size=6, shuffle=True,
                       generator=tl.Generator().manual_seed(3))
    assert np.concatenate([b["i"].numpy() for b in again]).tolist() == epochs[0].tolist()
    tl.manual_seed(5)                                # no generator: the default one
    first = [b["i"].tolist() for b in DataLoader(Squares(9), batch_size=4, shuffle=True)]
    tl.manual_seed(5)
    assert [b["i"].tolist() for b in DataLoader(Squares(9), batch_size=4, shuffle=True)] == \
        first


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    rs = RandomSampler(range(5), generator=np.random.default_rng(0))
    assert sorted(rs) == list(range(5)) and len(rs) == 5
    more = list(RandomSampler(range(3), num_samples=7, generator=tl.Generator(1)))
    assert len(more) == 7 and sorted(more[:3]) == [0, 1, 2] and sorted(more[3:6]) == [0, 1, 2]
    rep = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert len(rep) == 50 and set(rep) <= {0, 1, 2}
    assert sorted(SubsetRandomSampler([10, 20, 30])) == [10, 20, 30]
    weighted = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 40, generator=tl.Generator(0)))
    assert set(weighted) <= {1, 3} and weighted.count(3) > weighted.count(1)
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3 and len(BatchSampler(range(7), 3, True)) \
        == 2


def test_samplers_match_torch_where_deterministic():
    torch_data = pytest.importorskip("torch.utils.data")
    for drop_last in (False, True):
        assert list(BatchSampler(SequentialSampler(range(10)), 4, drop_last)) == list(
            torch_data.BatchSampler(torch_data.SequentialSampler(range(10)), 4, drop_last))
    assert len(RandomSampler(range(5), num_samples=12)) == len(
        torch_data.RandomSampler(range(5), num_samples=12))


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


def test_iterable_dataset_batches_match_torch():
    torch_data = pytest.importorskip("torch.utils.data")

    class TorchStream(torch_data.IterableDataset):
        def __iter__(self):
            return iter(range(7))

    for kwargs in ({"batch_size": 3}, {"batch_size": 3, "drop_last": True},
                   {"batch_size": None}):
        mine = [_plain(b) for b in DataLoader(Stream(7), **kwargs)]
        assert mine == [_plain(b) for b in torch_data.DataLoader(TorchStream(), **kwargs)]


def test_random_split():
    parts = random_split(range(10), [0.33, 0.33, 0.34], generator=tl.Generator(0))
    assert [len(p) for p in parts] == [4, 3, 3]
    assert sorted(i for p in parts for i in p) == list(range(10))
    a, b = random_split(Squares(6), [4, 2], generator=np.random.default_rng(1))
    assert isinstance(a, Subset) and len(a) == 4 and a[0]["x"].shape == (2,)
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="not between 0 and 1"):
        random_split(range(10), [1.5, -0.5])


def test_random_split_lengths_match_torch():
    torch_data = pytest.importorskip("torch.utils.data")
    for n, fractions in [(10, [0.33, 0.33, 0.34]), (7, [0.5, 0.5]), (11, [0.1, 0.2, 0.7])]:
        assert [len(p) for p in random_split(range(n), fractions)] == [
            len(p) for p in torch_data.random_split(range(n), fractions)]


def test_subset_concat_and_tensor_dataset():
    ds = Squares(4) + Squares(3)
    assert len(ds) == 7 and ds[5]["i"] == 1 and ds[-1]["i"] == 2
    x, y = TensorDataset(tl.ones(3, 2), tl.arange(3))[2]
    assert x.shape == (2,) and y.item() == 2
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(tl.ones(3), tl.ones(4))
    assert Subset(Squares(9), [8, 1])[0]["i"] == 8


@pytest.mark.parametrize("kwargs, match", [
    ({"shuffle": True, "sampler": [0, 1]}, "mutually exclusive with shuffle"),
    ({"batch_size": 2, "batch_sampler": [[0]]}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": 0}, "positive integer"),
    ({"num_workers": -1}, "non-negative"),
    ({"batch_size": None, "drop_last": True}, "mutually exclusive with drop_last"),
])
def test_loader_argument_errors_match_torch(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(Squares(4), **kwargs)
    torch_data = pytest.importorskip("torch.utils.data")
    with pytest.raises(ValueError):
        torch_data.DataLoader(Squares(4), **kwargs)


def test_worker_options_are_accepted_and_loading_stays_in_process():
    loader = DataLoader(Squares(4), batch_size=2, num_workers=4, pin_memory=True,
                        persistent_workers=True, prefetch_factor=2)
    assert [b["i"].tolist() for b in loader] == [[0, 1], [2, 3]]
    assert data.get_worker_info() is None


def test_collate_keeps_the_graph_of_samples_that_require_grad():
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    batch = default_collate([w * 1, w * 2, w * 3])
    assert batch.requires_grad and batch.shape == (3, 2)
    batch.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 6.0])
