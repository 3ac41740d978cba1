"""NCCL smoke test on one GPU (world size 1 still makes every NCCL call):

    python benchmarks/gpu/nccl_smoke.py             (or: mpiexec -n 2 python ... on 2 GPUs)

init_process_group("nccl"); all_reduce (sum, avg, max) of CuPy arrays on the side stream,
broadcast, all_gather, barrier; then DistributedDataParallel on a small CUDA MLP: its averaged
gradients must equal the plain model's (world 1: the same numbers; N ranks: the mean of the
ranks' gradients). Prints one line per check and "NCCL SMOKE PASSED"; exits 1 on a failed
check, 2 without a usable GPU, 3 when CuPy has no NCCL library.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))

import numpy as np  # noqa: E402


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)


def main():
    from tinygrad_llm import backend
    if not backend.gpu_available():
        print("no usable CUDA GPU (CuPy)")
        return 2
    import cupy
    try:
        from cupy.cuda import nccl
        usable = getattr(nccl, "available", True)
    except ImportError as e:
        usable, nccl = False, e
    if not usable:
        print(f"CuPy has no NCCL ({nccl}): pip install nvidia-nccl-cu12")
        return 3
    from tinygrad_llm import Tensor, nn
    from tinygrad_llm import distributed as dist
    group = dist.init_process_group("nccl", timeout=60)
    rank, world = dist.get_rank(), dist.get_world_size()
    print(f"nccl backend: rank {rank} of {world} on GPU {group.device.id}", flush=True)

    a = cupy.full(1000, rank + 1.0, dtype=cupy.float32)
    dist.all_reduce(a)
    check("all_reduce sum", bool((a == world * (world + 1) / 2).all()))
    b = cupy.full(7, float(rank), dtype=cupy.float64)
    dist.all_reduce(b, op=dist.ReduceOp.AVG)
    check("all_reduce avg", bool(cupy.allclose(b, (world - 1) / 2)))
    m = cupy.asarray([rank, -rank], dtype=cupy.int64)
    dist.all_reduce(m, op="max")
    check("all_reduce max", m.get().tolist() == [world - 1, 0])
    c = cupy.arange(5, dtype=cupy.float32) * (rank + 1)
    dist.broadcast(c, src=0)
    check("broadcast", bool((c == cupy.arange(5, dtype=cupy.float32)).all()))
    outs = [cupy.zeros(3, dtype=cupy.float32) for _ in range(world)]
    dist.all_gather(outs, cupy.full(3, float(rank), dtype=cupy.float32))
    check("all_gather", all(float(o[0]) == r for r, o in enumerate(outs)))
    work = dist.all_reduce(cupy.ones(4, dtype=cupy.float32), async_op=True)
    work.wait()
    check("async all_reduce + wait", work.is_completed())
    dist.barrier()
    check("barrier", True)

    def mlp():
        model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))
        return model.to("cuda")
    model, plain = mlp(), mlp()
    plain.load_state_dict(model.state_dict())
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=1024 / 2 ** 20)
    x = Tensor(cupy.asarray(np.random.default_rng(rank).normal(size=(8, 16)),
                            dtype=cupy.float32))
    (ddp(x) ** 2).mean().backward()
    (plain(x) ** 2).mean().backward()
    check("DDP buckets", ddp.num_buckets > 1, f"({ddp.num_buckets})")
    gaps = []
    for p, q in zip(model.parameters(), plain.parameters()):
        expected = q.grad.data.copy()
        dist.all_reduce(expected, op="avg")          # the mean of the ranks' local gradients
        gaps.append(float(cupy.abs(p.grad.data - expected).max()))
        check("DDP gradient on the GPU", isinstance(p.grad.data, cupy.ndarray))
    check("DDP gradients == mean of local gradients", max(gaps) <= 1e-6,
          f"(max gap {max(gaps):.2e})")
    dist.destroy_process_group()
    print("NCCL SMOKE PASSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
