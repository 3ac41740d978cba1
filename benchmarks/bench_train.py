"""Training throughput and memory of the main job's GPT (d=128 L=4 H=4, T=128, B=16, vocab 1024)
with AdamW, over many steps: tokens/s, and the resident memory (RSS) curve, which must stay flat.

    python benchmarks/bench_train.py [--steps 1000] [--threads 2]

The loss is checked to fall (the model learns a repeating token pattern) before the numbers are
reported; RSS is read from /proc/self/statm every --every steps.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args(argv)
    harness.set_threads(args.threads)
    import numpy as np
    import tinygrad_llm as tg
    from tinygrad_llm.models import GPT, GPTConfig
    from tinygrad_llm.optim import AdamW, clip_grad_norm_

    B, T, V = 16, 128, 1024
    model = GPT(GPTConfig(block_size=T, vocab_size=V, n_layer=4, n_head=4, n_embd=128),
                generator=tg.Generator(0))
    opt = AdamW(model.named_parameters(), lr=1e-3, weight_decay=0.1)
    stream = np.tile(np.random.default_rng(0).integers(0, V, 97), 200)  # a learnable pattern
    rng = np.random.default_rng(0)
    curve, times, losses = [], [], []
    for step in range(1, args.steps + 1):
        starts = rng.integers(0, len(stream) - T - 1, B)
        x = np.stack([stream[s:s + T] for s in starts])
        y = np.stack([stream[s + 1:s + T + 1] for s in starts])
        t0 = time.perf_counter()
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
        if step == 1 or step % args.every == 0:
            curve.append((step, rss_mib()))
    if not losses[-1] < losses[0] - 1.0:
        raise AssertionError(f"the model did not learn: loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    steady = sorted(times[5:])
    median = steady[len(steady) // 2]
    after_warmup = [m for s, m in curve if s >= min(100, args.steps)]
    growth = after_warmup[-1] - after_warmup[0] if len(after_warmup) > 1 else 0.0
    rows = [{"steps": args.steps, "median step (ms)": f"{median * 1e3:.1f}",
             "tokens/s": f"{B * T / median:,.0f}",
             "loss first -> last": f"{losses[0]:.2f} -> {losses[-1]:.2f}",
             "RSS at step 1 (MiB)": f"{curve[0][1]:.0f}",
             "RSS at the end (MiB)": f"{curve[-1][1]:.0f}",
             "RSS growth after step 100 (MiB)": f"{growth:+.1f}"}]
    table = harness.markdown_table(rows, list(rows[0]))
    curve_md = ", ".join(f"{s}: {m:.0f}" for s, m in curve)
    print(table + "\n\nRSS curve (step: MiB): " + curve_md)
    info = harness.machine_info()
    harness.write_json(args.json, {"machine": info, "rows": rows, "rss_curve": curve,
                                   "step_seconds": times, "losses": losses})
    if not args.no_readme:
        harness.update_readme(
            "Training throughput and memory (bench_train.py)",
            f"The main job's GPT (d=128 L=4 H=4, T={T}, B={B}, vocab {V}), AdamW, gradient "
            f"clipping, {args.threads} threads. Target: flat memory over 1,000 steps.\n\n"
            + harness.machine_markdown(info) + "\n\n" + table
            + "\n\nRSS curve (step: MiB): " + curve_md)


if __name__ == "__main__":
    main()
