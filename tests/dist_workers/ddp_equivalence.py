"""Collectives, DistributedDataParallel == one process, no_sync, unused parameters, and the
DistributedSampler's uneven split: run with mpiexec -n 2 or -n 3."""
import contextlib

from common import flat_params, global_batch, np, report, tiny_gpt

from tinygrad_llm import Tensor
from tinygrad_llm import distributed as dist
from tinygrad_llm import nn
from tinygrad_llm.nn.parallel import DistributedDataParallel
from tinygrad_llm.optim import AdamW, clip_grad_norm_

dist.init_process_group("mpi", timeout=60)
rank, world = dist.get_rank(), dist.get_world_size()

# ---- collectives -----------------------------------------------------------------------
a = np.full(3, rank + 1.0)
dist.all_reduce(a)
assert np.array_equal(a, np.full(3, world * (world + 1) / 2)), a
t = Tensor(np.full((2, 2), float(rank)))
dist.all_reduce(t, op=dist.ReduceOp.AVG)
assert np.allclose(t.data, (world - 1) / 2), t.data
m = np.array([rank, -rank], dtype=np.int64)
dist.all_reduce(m, op="max")
assert m.tolist() == [world - 1, 0], m
b = np.arange(4.0) * (rank + 1)
dist.broadcast(b, src=world - 1)
assert np.array_equal(b, np.arange(4.0) * world), b
outs = [Tensor(np.zeros(2)) for _ in range(world)]
dist.all_gather(outs, Tensor(np.array([rank, 10.0 * rank])))
assert [o.data.tolist() for o in outs] == [[r, 10.0 * r] for r in range(world)]
assert dist.all_gather_object({"rank": rank, "s": "x" * rank}) == [
    {"rank": r, "s": "x" * r} for r in range(world)]
work = dist.all_reduce(np.ones(5), async_op=True)
work.wait()
dist.barrier()

# ---- DDP equivalence: N ranks x B rows == 1 process x N*B rows --------------------------
B, STEPS, ACCUM = 2, 3, 2


def train(model, rows_of, step_model, finish):
    opt = AdamW(model.named_parameters(), lr=1e-2, weight_decay=0.1)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        for micro in range(ACCUM):
            x, y = global_batch(rng, B * world)
            x, y = rows_of(x), rows_of(y)
            ctx = step_model.no_sync() if (micro < ACCUM - 1 and step_model is not model) \
                else contextlib.nullcontext()
            with ctx:
                _, loss = step_model(x, y)
                (loss / ACCUM).backward()
        finish()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()


model = tiny_gpt(seed=100 + rank)               # different on purpose: DDP broadcasts rank 0's
ddp = DistributedDataParallel(model, bucket_cap_mb=4096 / 2 ** 20)
syncs_before = ddp.stats["syncs"]
train(model, lambda a: a[rank * B:(rank + 1) * B], ddp, lambda: None)   # backward finishes
auto_syncs = ddp.stats["syncs"] - syncs_before
mine = flat_params(model)
gathered = np.zeros((world, mine.size))
dist.all_gather(list(gathered), mine)
replica_gap = float(np.abs(gathered - gathered[0]).max())

# ---- unused parameters: rank 0 uses both layers, the others only the first ----------------


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.b = nn.Linear(3, 2)

    def forward(self, x, use_b):
        out = self.a(x).sum()
        return out + self.b(x).sum() if use_b else out


heads = TwoHeads().double()
hddp = dist.DistributedDataParallel(heads)
x = Tensor(np.arange(6.0).reshape(2, 3) + rank)
hddp(x, use_b=(rank == 0)).backward()
hddp.finish_gradient_sync()
grad_b = heads.b.weight.grad.data.copy()

# ---- uneven split: DistributedSampler pads, one DDP step on every rank's shard --------------
N = 10
sampler = dist.DistributedSampler(list(range(N)), shuffle=True, seed=3)
shards = dist.all_gather_object(sampler.indices().tolist())
dropped = dist.all_gather_object(dist.DistributedSampler(list(range(N)), shuffle=True, seed=3,
                                                         drop_last=True).indices().tolist())
data_x, data_y = global_batch(np.random.default_rng(5), N)
smodel = tiny_gpt(seed=7)
sddp = dist.DistributedDataParallel(smodel)
idx = sampler.indices()
_, loss = sddp(data_x[idx], data_y[idx])
loss.backward()
sgrads = np.concatenate([p.grad.data.ravel() for p in smodel.parameters()])

# ---- float32: one averaged gradient against one process's gradient of the global batch ------
f32 = tiny_gpt(seed=11, dtype=np.float32)
fddp = DistributedDataParallel(f32, bucket_cap_mb=4096 / 2 ** 20)
fx, fy = global_batch(np.random.default_rng(9), 4 * world)
_, floss = fddp(fx[4 * rank:4 * rank + 4], fy[4 * rank:4 * rank + 4])
floss.backward()
f32_grads = np.concatenate([p.grad.data.ravel() for p in f32.parameters()])

# ---- sharded validation: every window once, reduced ----------------------------------------
from tinygrad_llm.distributed.training import evaluate_sharded, validation_windows  # noqa: E402
vx, vy = validation_windows(np.random.default_rng(4).integers(0, 17, 8 * 7 + 1), 8)
val_loss = evaluate_sharded(smodel, vx, vy, batch_size=2)

if rank == 0:
    fref = tiny_gpt(seed=11, dtype=np.float32)
    _, loss32 = fref(fx, fy)
    loss32.backward()
    fref_grads = np.concatenate([p.grad.data.ravel() for p in fref.parameters()])
    _, vref = smodel(vx, vy)
    ref = tiny_gpt(seed=100)
    train(ref, lambda a: a, ref, lambda: None)
    sref = tiny_gpt(seed=7)
    order = np.array(shards).T.ravel()        # rows of every rank, in any order: one mean
    _, rloss = sref(data_x[order], data_y[order])
    rloss.backward()
    sref_grads = np.concatenate([p.grad.data.ravel() for p in sref.parameters()])
    expected_b = np.ones((2, 1)) * (np.arange(6.0).reshape(2, 3)).sum(0) / world
    report(world=world, buckets=ddp.num_buckets, auto_syncs=auto_syncs,
           replica_gap=replica_gap, ddp_vs_single=float(np.abs(mine - flat_params(ref)).max()),
           moved=float(np.abs(mine - flat_params(tiny_gpt(seed=100))).max()),
           unused_grad_gap=float(np.abs(grad_b - expected_b).max()),
           shards=shards, dropped=dropped,
           uneven_grad_gap=float(np.abs(sgrads - sref_grads).max()),
           f32_grad_gap=float(np.abs(f32_grads - fref_grads).max()),
           f32_grad_scale=float(np.abs(fref_grads).max()),
           val_gap=abs(val_loss - float(vref.item())))
dist.barrier()
dist.destroy_process_group()
