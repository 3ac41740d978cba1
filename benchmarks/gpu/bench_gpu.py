"""The GPU table: tinygrad_llm on CuPy + numba-cuda beside PyTorch CUDA, float32, TF32 off on
both sides, each result validated against torch before it is timed.

    python benchmarks/gpu/bench_gpu.py --device cuda [--json F] [--md F]
    python benchmarks/gpu/bench_gpu.py --device cpu --tiny      (the harness on NumPy arrays)

Cases (full size; ``--tiny`` shrinks every one to a few KiB):
    softmax fwd              98304 x 1024                       torch.softmax
    attention fwd+bwd        causal, B=8 H=12 T=1024 D=64       SDPA + autograd.grad
    GPT step (AdamW)         d=256 L=4 H=4 B=16 T=128 V=1024     same weights, torch AdamW
    GPT-2 124M-shaped step   d=768 L=12 H=12 B=8 T=1024 V=50257

Timing: warm-up calls, then samples taken in turn (ours, torch, ours, ...), each sample a loop
long enough to last ``--min-time`` and ended by a device synchronization; medians are
reported, and the ratio ours / torch in time (below 1 = faster than torch).
"""
import argparse
import math
import os
import sys
import time

os.environ.setdefault("CUPY_TF32", "0")          # CuPy reads it when its cuBLAS handle starts
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))        # benchmarks/ (harness.py)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import harness  # noqa: E402
import torch_gpt  # noqa: E402

# Targets of issue 19 (time ratio ours / torch; softmax's is >= 0.9x torch's throughput).
TARGETS = {"softmax": 1 / 0.9, "attention": 2.0, "gpt_small": 1.5, "gpt2_124m": 1.3}


class Env:
    """The two sides on one device: our array module and torch, with their synchronizations."""

    def __init__(self, device):
        import torch
        self.device = device
        self.torch = torch
        if device == "cuda":
            import cupy
            self.xp = cupy
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.set_float32_matmul_precision("highest")
        else:
            self.xp = np
            torch.set_num_threads(1)             # the dry run's tiny shapes: no hand-offs
        self.tdev = torch.device(device)

    def sync(self):
        if self.device == "cuda":
            self.xp.cuda.Device().synchronize()
            self.torch.cuda.synchronize()

    def ours(self, a):
        return self.xp.asarray(a)

    def theirs(self, a, grad=False):
        return self.torch.tensor(a, device=self.tdev, requires_grad=grad)

    def free(self):
        if self.device == "cuda":
            self.xp.get_default_memory_pool().free_all_blocks()
            self.torch.cuda.empty_cache()


def host(a):
    """A NumPy copy of a CuPy/NumPy array, a torch tensor or one of our Tensors."""
    from tinygrad_llm import backend
    if type(a).__module__.startswith("torch"):
        a = a.detach().cpu().numpy()
    a = getattr(a, "data", a)                         # our Tensor -> its array
    return np.asarray(backend.to_numpy(a), dtype=np.float64)


def rel_err(got, want):
    """Normwise relative error ||got - want|| / ||want||, in float64 on the host."""
    got, want = host(got), host(want)
    if got.shape != want.shape:
        raise AssertionError(f"shapes differ: ours {got.shape}, torch {want.shape}")
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def validate(name, pairs, tol):
    """Raise AssertionError naming the worst pair if any error exceeds tol; return the max."""
    errs = {label: rel_err(g, w) for label, g, w in pairs}
    worst = max(errs, key=errs.get)
    if not errs[worst] <= tol:       # NaN fails too
        raise AssertionError(f"{name}: {worst} differs from torch by {errs[worst]:.2e} "
                             f"(normwise relative), above {tol:.0e}")
    return errs[worst]


def time_pair(env, fns, warmup, repeats, min_time, max_seconds=30.0):
    """Median seconds per call of each fn, samples interleaved, each ended by a sync. Fewer
    samples (at least 3) when all of them would take longer than ``max_seconds``."""
    inner, ones = {}, {}
    for name, fn in fns.items():
        for _ in range(warmup):       # (validation ran each once: kernels are compiled)
            t0 = time.perf_counter()
            fn()
            env.sync()
            if time.perf_counter() - t0 > 1.0:
                break                 # a slow step: one warm-up is enough
        t0 = time.perf_counter()
        fn()
        env.sync()
        ones[name] = max(time.perf_counter() - t0, 1e-7)
        inner[name] = max(1, math.ceil(min_time / ones[name]))
    per_round = sum(ones[n] * inner[n] for n in fns)
    repeats = min(repeats, max(3, int(max_seconds / per_round)))
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            env.sync()
            samples[name].append((time.perf_counter() - t0) / inner[name])
    return {name: float(np.median(s)) for name, s in samples.items()}, repeats


# ---------------------------------------------------------------------------------------------
# Cases: each returns (shape text, {"ours": fn, "torch": fn}, max error, bytes or None)
# ---------------------------------------------------------------------------------------------

def case_softmax(env, tiny, rng):
    import tinygrad_llm.kernels as K
    n, c = (64, 33) if tiny else (98304, 1024)
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    xo, xt = env.ours(x), env.theirs(x)
    fns = {"ours": lambda: K.softmax_forward(xo),
           "torch": lambda: env.torch.softmax(xt, dim=-1)}
    err = validate("softmax", [("y", fns["ours"](), fns["torch"]())], 1e-5)
    return f"{n}x{c}", fns, err, 2 * n * c * 4


def case_attention(env, tiny, rng):
    import tinygrad_llm.kernels as K
    b, h, t, d = (2, 2, 17, 8) if tiny else (8, 12, 1024, 64)
    q, k, v, dout = (rng.standard_normal((b, h, t, d)).astype(np.float32) for _ in range(4))
    qo, ko, vo, do = (env.ours(a) for a in (q, k, v, dout))
    qt, kt, vt = (env.theirs(a, grad=True) for a in (q, k, v))
    dt = env.theirs(dout)
    sdpa = env.torch.nn.functional.scaled_dot_product_attention

    def ours():
        out, lse = K.attention_forward(qo, ko, vo, causal=True)
        return (out,) + tuple(K.attention_backward(qo, ko, vo, out, lse, do, causal=True))

    def theirs():
        out = sdpa(qt, kt, vt, is_causal=True)
        return (out,) + tuple(env.torch.autograd.grad(out, (qt, kt, vt), dt))

    got, want = ours(), theirs()
    err = validate("attention", zip(("out", "dq", "dk", "dv"), got, want), 2e-5)
    return f"B{b} H{h} T{t} D{d} causal", {"ours": ours, "torch": theirs}, err, None


def _gpt_case(env, rng, name, n_layer, n_head, n_embd, vocab, batch, block, tol):
    import tinygrad_llm as tg
    from tinygrad_llm.models import GPT, GPTConfig
    from tinygrad_llm.optim import AdamW
    torch = env.torch
    cfg = GPTConfig(block_size=block, vocab_size=vocab, n_layer=n_layer, n_head=n_head,
                    n_embd=n_embd, dropout=0.0)
    model = GPT(cfg, generator=tg.Generator(0))
    if env.device == "cuda":
        model.to("cuda")
    tmodel = torch_gpt.build(torch, n_layer, n_head, n_embd, vocab, block).to(env.tdev)
    tmodel.load_state_dict({k: torch.tensor(host(v).astype(np.float32))
                            for k, v in model.state_dict().items()})
    opt = AdamW(model.named_parameters(), lr=1e-4, weight_decay=0.1)
    topt = torch.optim.AdamW(tmodel.parameters(), lr=1e-4, weight_decay=0.1)
    x = rng.integers(0, vocab, (batch, block))
    y = rng.integers(0, vocab, (batch, block))
    xo, yo = tg.Tensor(env.ours(x)), tg.Tensor(env.ours(y))
    xt, yt = env.theirs(x), env.theirs(y)

    def ours():
        _, loss = model(xo, yo)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def theirs():
        _, loss = tmodel(xt, yt)
        topt.zero_grad(set_to_none=True)
        loss.backward()
        topt.step()
        return loss

    # Validation: loss and every gradient of one step, then the loss after the AdamW update.
    loss, tloss = ours(), theirs()
    tparams = dict(tmodel.named_parameters())
    pairs = [("loss", loss, tloss)]
    pairs += [(f"grad {n}", p.grad, tparams[n].grad) for n, p in model.named_parameters()]
    err = validate(name, pairs, tol)
    with torch.no_grad():
        after = [("loss after one AdamW step", model(xo, yo)[1], tmodel(xt, yt)[1])]
    err = max(err, validate(name, after, tol))
    shape = f"d{n_embd} L{n_layer} H{n_head} B{batch} T{block} V{vocab}"
    return shape, {"ours": ours, "torch": theirs}, err, None


def case_gpt_small(env, tiny, rng):
    if tiny:
        return _gpt_case(env, rng, "gpt_small", 2, 2, 32, 64, 2, 16, 2e-4)
    return _gpt_case(env, rng, "gpt_small", 4, 4, 256, 1024, 16, 128, 2e-4)


def case_gpt2_124m(env, tiny, rng):
    if tiny:
        return _gpt_case(env, rng, "gpt2_124m", 2, 4, 48, 97, 2, 32, 2e-4)
    return _gpt_case(env, rng, "gpt2_124m", 12, 12, 768, 50257, 8, 1024, 1e-3)


CASES = {"softmax": ("softmax fwd", case_softmax),
         "attention": ("attention fwd+bwd", case_attention),
         "gpt_small": ("GPT step AdamW", case_gpt_small),
         "gpt2_124m": ("GPT-2 124M-shaped step", case_gpt2_124m)}


def run_case(env, key, args):
    title, fn = CASES[key]
    row = {"case": title, "key": key}
    t0 = time.perf_counter()
    try:
        shape, fns, err, nbytes = fn(env, args.tiny, np.random.default_rng(0))
        row.update(shape=shape, max_rel_err=f"{err:.1e}")
        times, row["samples"] = time_pair(env, fns, args.warmup, args.repeats, args.min_time)
        ratio = times["ours"] / times["torch"]
        row.update(ours_ms=round(times["ours"] * 1e3, 3), torch_ms=round(times["torch"] * 1e3, 3),
                   ratio=round(ratio, 3), target=f"<= {TARGETS[key]:.2f}x",
                   met="yes" if ratio <= TARGETS[key] else "NO")
        if nbytes:
            row["ours_GBps"] = round(nbytes / times["ours"] / 1e9, 1)
            row["torch_GBps"] = round(nbytes / times["torch"] / 1e9, 1)
    except Exception as e:  # one failing case must not hide the others
        row["error"] = f"{type(e).__name__}: {e}"[:500]
    row["seconds"] = round(time.perf_counter() - t0, 1)
    env.free()
    return row


COLUMNS = ["case", "shape", "ours_ms", "torch_ms", "ratio", "target", "met", "ours_GBps",
           "torch_GBps", "max_rel_err", "samples", "seconds", "error"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (the CPU dry run)")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--min-time", type=float, default=0.05, help="seconds per timing sample")
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    args = p.parse_args(argv)
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    env = Env(args.device)
    info = harness.machine_info()
    info.update(cupy=harness._version("cupy"), numba_cuda=harness._version("numba_cuda"),
                tf32={"CUPY_TF32": os.environ.get("CUPY_TF32"),
                      "torch_matmul_allow_tf32": env.torch.backends.cuda.matmul.allow_tf32})
    rows = []
    for key in keys:
        rows.append(run_case(env, key, args))
        print(rows[-1], flush=True)
        text = write_results(args, info, rows)     # after every case: a timeout keeps them
    print(text)
    return 1 if any("error" in r for r in rows) else 0


def write_results(args, info, rows):
    """Write the JSON and markdown results so far; return the markdown."""
    table = harness.markdown_table(rows, [c for c in COLUMNS if any(c in r for r in rows)])
    text = (f"GPU: {info['gpu'] or 'none'}; cupy {info['cupy']}, numba-cuda "
            f"{info['numba_cuda']}, numpy {info['numpy']}, torch {info['torch']}; float32, "
            f"TF32 off; device {args.device}{' (tiny shapes)' if args.tiny else ''}; "
            f"ratio = our time / torch's.\n\n{table}\n")
    harness.write_json(args.json, {"machine": info, "args": vars(args), "rows": rows})
    if args.md:
        with open(args.md, "w", encoding="utf-8") as f:
            f.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
