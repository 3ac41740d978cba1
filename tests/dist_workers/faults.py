"""Fault cases, one per run: ``mpiexec -n 2 python faults.py MODE [OUT_DIR]``.

    raise     rank 0 saves a checkpoint of its DDP model and then computes; rank 1 raises
              ValueError: the whole job must end, with a message on both ranks
    timeout   rank 1 never joins an all_reduce: rank 0's watchdog fires after 2 s
    kill      rank 1 kills itself with SIGKILL in the middle of training
    mismatch  rank 1's model has a different embedding shape: DDP construction names it
    interrupt both ranks all-reduce in a loop until mpiexec forwards a Ctrl-C (SIGINT); rank 0
              then writes a checkpoint (slowly), rank 1 waits for it, the job ends with 130
"""
import os
import signal
import sys
import time

from common import global_batch, np, tiny_gpt

from tinygrad_llm import checkpoint as ckpt
from tinygrad_llm import distributed as dist

mode = sys.argv[1]
dist.init_process_group("mpi", timeout=2.0 if mode == "timeout" else 20.0)
rank = dist.get_rank()
print(f"rank {rank} started", flush=True)

if mode == "mismatch":
    model = tiny_gpt(seed=0)
    if rank == 1:
        model.transformer.h[1].mlp.c_fc.weight.data = np.zeros((16, 80))
    dist.DistributedDataParallel(model)
    print(f"rank {rank}: no error", flush=True)

elif mode == "interrupt":
    model = tiny_gpt(seed=0)
    try:
        dist.barrier()
        print(f"rank {rank} looping", flush=True)
        while True:
            dist.all_reduce(np.ones(8))
            time.sleep(0.01)
    except KeyboardInterrupt:
        if rank == 0:
            time.sleep(1.0)              # a slow disk: rank 1 must not end the job meanwhile
            ckpt.save_checkpoint(sys.argv[2], model, step=7)
            print("rank 0 saved the interrupt checkpoint", flush=True)
        raise

elif mode == "timeout":
    if rank == 1:
        time.sleep(60)               # never joins: its peer's notice must end this sleep
    dist.all_reduce(np.ones(4))

else:
    model = tiny_gpt(seed=0)
    ddp = dist.DistributedDataParallel(model)
    rng = np.random.default_rng(0)
    for step in range(1, 4):
        x, y = global_batch(rng, 4)
        _, loss = ddp(x[2 * rank:2 * rank + 2], y[2 * rank:2 * rank + 2])
        loss.backward()
        ddp.finish_gradient_sync()
        for p in model.parameters():
            p.data -= 0.1 * p.grad.data
            p.grad = None
        if step == 1 and rank == 0:
            ckpt.save_checkpoint(sys.argv[2], model, step=step)
        dist.barrier()
        if step == 2 and rank == 1:
            if mode == "raise":
                raise ValueError("boom on rank 1 at step 2")
            os.kill(os.getpid(), signal.SIGKILL)
        if step == 2 and rank == 0:
            time.sleep(60)           # a long computation: the listener must still end it
dist.destroy_process_group()
print(f"rank {rank}: finished normally", flush=True)
