"""The parts of tinygrad_llm.distributed that need no mpiexec: bucket planning, the DDP
bucket/hook logic over an in-process world of one, the sampler's index rules (against
PyTorch's), batch sharding, sharded validation, the watchdog and the NCCL helpers."""
import math

import numpy as np
import pytest

from tinygrad_llm import Tensor, nn
from tinygrad_llm.distributed import DistributedSampler, plan_buckets
from tinygrad_llm.distributed import faults
from tinygrad_llm.distributed.ddp import DistributedDataParallel
from tinygrad_llm.distributed.mpi_group import Work
from tinygrad_llm.distributed.nccl_group import (decode_unique_id, encode_unique_id,
                                                 nccl_dtype_name)
from tinygrad_llm.distributed.training import (evaluate_sharded, shard_rows,
                                               validation_windows)


class WorldOfOne:
    """A process group of one rank that completes every collective at once and records the
    all-reduces it was asked for (sizes, and whether backward was still running)."""
    name, rank, size, timeout = "local", 0, 1, 5.0

    def __init__(self):
        self.reduced = []
        self.in_backward = False

    def all_reduce(self, array, op="sum"):
        self.reduced.append((array.size, self.in_backward))
        return Work(lambda: True, "all_reduce", self)

    def broadcast(self, array, src=0):
        return Work(lambda: True, "broadcast", self)

    def all_gather(self, out, array):
        out[0] = array
        return Work(lambda: True, "all_gather", self)


def test_plan_buckets_caps_sizes_and_splits_dtypes():
    f32, f64 = ("float32", "cpu"), ("float64", "cpu")
    assert plan_buckets([4, 4, 4, 4], [f32] * 4, cap_bytes=8) == [[0, 1], [2, 3]]
    assert plan_buckets([4, 20, 4], [f32] * 3, cap_bytes=8) == [[0], [1], [2]]
    assert plan_buckets([4, 4, 4], [f32, f64, f64], cap_bytes=100) == [[0], [1, 2]]
    assert plan_buckets([], [], cap_bytes=8) == []
    with pytest.raises(ValueError, match="bucket cap must be positive"):
        plan_buckets([4], [f32], cap_bytes=0)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.l3(self.l2(self.l1(x).tanh()).tanh()).sum()


def make_ddp(cap_bytes=200, overlap=True):
    group = WorldOfOne()
    model = MLP().double()
    ddp = DistributedDataParallel(model, bucket_cap_mb=cap_bytes / 2 ** 20,
                                  process_group=group, overlap=overlap)
    return group, model, ddp


def test_buckets_fill_in_reverse_order_and_start_during_backward():
    group, model, ddp = make_ddp()
    names = ddp.bucket_parameter_names()
    assert names[0][0] == "l3.bias" and names[-1][-1] == "l1.weight"
    x = Tensor(np.random.default_rng(0).normal(size=(3, 4)))
    ref = MLP().double()
    ref.load_state_dict(model.state_dict())
    ref(x).backward()
    group.in_backward = True
    ddp(x).backward()
    assert len(group.reduced) == ddp.num_buckets > 2
    assert ddp.stats["syncs"] == 1           # the last hook finished the sync
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.grad.data, q.grad.data)   # a world of one: unchanged


def test_overlap_off_starts_all_reduces_only_when_all_gradients_are_in():
    group, model, ddp = make_ddp(overlap=False)
    started = []
    original = group.all_reduce
    pending = []

    def spy(array, op="sum"):
        pending.append(sum(b.pending for b in ddp._buckets))
        started.append(array.size)
        return original(array, op)
    group.all_reduce = spy
    ddp(Tensor(np.ones((2, 4)))).backward()
    assert len(started) == ddp.num_buckets and set(pending) == {0}


def test_no_sync_accumulates_without_communication_then_syncs_the_sum():
    group, model, ddp = make_ddp()
    x1, x2 = Tensor(np.ones((2, 4))), Tensor(np.full((2, 4), 2.0))
    with ddp.no_sync():
        ddp(x1).backward()
    assert group.reduced == []
    ddp(x2).backward()
    assert len(group.reduced) == ddp.num_buckets
    ref = MLP().double()
    ref.load_state_dict(model.state_dict())
    ref(x1).backward()
    ref(x2).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=0, atol=1e-15)


def test_incomplete_sync_is_an_error_at_the_next_forward():
    class Partial(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 1), nn.Linear(2, 1)

        def forward(self, x):
            return self.a(x).sum()
    pddp = DistributedDataParallel(Partial().double(), process_group=WorldOfOne())
    pddp(Tensor(np.ones((1, 2)))).backward()         # b got no gradient: sync not finished
    with pytest.raises(faults.DistributedError,
                       match=r"no gradient for \['b\.bias', 'b\.weight'\]"):
        pddp(Tensor(np.ones((1, 2))))
    pddp.finish_gradient_sync()                      # zeros for b; then training goes on
    assert np.array_equal(pddp.module.b.weight.grad.data, np.zeros((1, 2)))
    pddp(Tensor(np.ones((1, 2))))


def test_second_backward_after_one_synced_forward_is_an_error():
    _, _, ddp = make_ddp()
    loss = ddp(Tensor(np.ones((2, 4))))
    loss.backward(retain_graph=True)                 # averaged: the step's sync is done
    with pytest.raises(faults.DistributedError, match="second gradient after one synced"):
        loss.backward()
    with ddp.no_sync():                              # accumulation is the way to do that
        loss = ddp(Tensor(np.ones((2, 4))))
    loss.backward(retain_graph=True)
    loss.backward()


def torch_sampler_indices(n, world, rank, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler
    sampler = TorchSampler(list(range(n)), num_replicas=world, rank=rank, shuffle=False,
                           drop_last=drop_last)
    del torch
    return list(sampler)


@pytest.mark.parametrize("n,world", [(10, 3), (10, 4), (3, 4), (8, 2), (1, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_matches_torch_without_shuffle(n, world, drop_last):
    for rank in range(world):
        ours = DistributedSampler(list(range(n)), num_replicas=world, rank=rank,
                                  shuffle=False, drop_last=drop_last)
        assert list(ours) == torch_sampler_indices(n, world, rank, drop_last)
        assert len(ours) == len(list(ours))


def test_sampler_reshuffles_per_epoch_identically_on_every_rank():
    def shards(epoch):
        out = []
        for rank in range(3):
            s = DistributedSampler(list(range(11)), num_replicas=3, rank=rank, seed=5)
            s.set_epoch(epoch)
            out.append(s.indices().tolist())
        return out
    e0, e1 = shards(0), shards(1)
    assert e0 == shards(0) and e0 != e1
    for shard_set in (e0, e1):
        assert set(i for s in shard_set for i in s) == set(range(11))
        assert all(len(s) == math.ceil(11 / 3) for s in shard_set)
    subset = DistributedSampler(list("abcdefg"), num_replicas=2, rank=1, shuffle=False).subset()
    assert [subset[i] for i in range(len(subset))] == ["b", "d", "f", "a"]


def test_sampler_rejects_bad_rank():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        DistributedSampler([1, 2, 3], num_replicas=2, rank=2)


def test_shard_rows_splits_a_global_batch():
    x, y = np.arange(12).reshape(6, 2), Tensor(np.arange(6.0))
    parts = [shard_rows((x, y), r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate([p[0] for p in parts]), x)
    assert isinstance(parts[1][1], Tensor) and parts[1][1].data.tolist() == [2.0, 3.0]
    assert shard_rows({"a": x}, 0, 1)["a"] is x
    with pytest.raises(ValueError, match="6 rows does not split evenly over 4 ranks"):
        shard_rows(x, 0, 4)


def test_validation_windows_cover_the_stream_and_sharded_eval_of_one_rank():
    ids = np.arange(30)
    x, y = validation_windows(ids, 7)
    assert x.shape == (4, 7) and np.array_equal(y, x + 1)
    with pytest.raises(ValueError, match="too few for one window"):
        validation_windows(np.arange(5), 7)
    from tinygrad_llm.models import GPT, GPTConfig
    model = GPT(GPTConfig(block_size=8, vocab_size=31, n_layer=1, n_head=2, n_embd=8))
    model.double()
    x, y = validation_windows(np.random.default_rng(0).integers(0, 31, 41), 8)
    full = float(model(x, y)[1].item())
    assert abs(evaluate_sharded(model, x, y, batch_size=2) - full) < 1e-12


def test_watchdog_raises_a_clear_timeout():
    start = faults.time.monotonic()
    with pytest.raises(faults.CollectiveTimeout,
                       match=r"rank 3: broadcast of 8 bytes did not complete within 0.05 s"):
        faults.wait(lambda: False, "broadcast of 8 bytes", 3, 0.05)
    assert faults.time.monotonic() - start < 2
    calls = []
    faults.wait(lambda: calls.append(1) or len(calls) > 3, "x", 0, 1.0)
    assert len(calls) == 4


def test_timeout_from_environment(monkeypatch):
    monkeypatch.setenv("TINYGRAD_DIST_TIMEOUT", "12.5")
    assert faults.default_timeout() == 12.5
    monkeypatch.setenv("TINYGRAD_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="TINYGRAD_DIST_TIMEOUT='soon'"):
        faults.default_timeout()


def test_nccl_unique_id_round_trip_and_dtypes():
    uid = tuple(((i * 37) % 256) - 128 for i in range(128))
    encoded = encode_unique_id(uid)
    assert encoded.dtype == np.int8 and decode_unique_id(encoded) == uid
    assert nccl_dtype_name(np.float32) == "NCCL_FLOAT32"
    with pytest.raises(TypeError, match="NCCL cannot reduce arrays of dtype complex64"):
        nccl_dtype_name(np.complex64)


def test_launched_world_size_reads_the_launchers_environment():
    from tinygrad_llm.distributed.training import launched_world_size
    assert launched_world_size({}) == 1
    assert launched_world_size({"PMI_SIZE": "4"}) == 4
    assert launched_world_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3
    assert launched_world_size({"PMI_SIZE": ""}) == 1
