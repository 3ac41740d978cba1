"""Per-op autograd overhead: forward + backward of (a * b + c).sum() on 4x4 float32 tensors.

    python benchmarks/bench_overhead.py [--json out.json]

Three ops (mul, add, sum) run forward and backward per iteration, so the per-op figure is the
iteration time / 3. The work itself is tiny, so this measures the framework's Python overhead:
building the graph, the backward walk, allocating gradients. Baselines, measured in the same
run: bare NumPy doing only the forward arithmetic, and PyTorch CPU (if installed). One thread,
as in research/performance-results.md. Gradients are checked against the closed form first.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

harness.set_threads(1)

import numpy as np  # noqa: E402

import tinygrad_llm as tg  # noqa: E402

N_OPS = 3


def make_ours():
    rng = np.random.default_rng(0)
    a, b, c = (tg.tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
               for _ in range(3))

    def step():
        a.grad = b.grad = c.grad = None
        (a * b + c).sum().backward()

    def check():
        step()
        np.testing.assert_allclose(a.grad.numpy(), b.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(b.grad.numpy(), a.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(c.grad.numpy(), np.ones((4, 4)), rtol=1e-6)
    return step, check


def make_numpy_forward():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3))

    def step():
        (a * b + c).sum()
    return step, lambda: None


def make_torch():
    import torch
    harness.torch_threads(torch)
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(4, 4, generator=g, requires_grad=True) for _ in range(3))

    def step():
        a.grad = b.grad = c.grad = None
        (a * b + c).sum().backward()

    def check():
        step()
        assert torch.allclose(a.grad, b.detach()) and torch.allclose(c.grad, torch.ones(4, 4))
    return step, check


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results",
                                                       "overhead.json"))
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)

    impls = [("tinygrad_llm", make_ours), ("numpy forward only", make_numpy_forward)]
    try:
        import torch  # noqa: F401
        impls.append(("torch " + torch.__version__, make_torch))
    except ImportError:
        print("torch not installed: no PyTorch baseline")
    steps = {}
    for name, make in impls:
        step, check = make()
        check()  # validate before timing
        steps[name] = step
    # samples taken in turn (A B C A B C ...) so machine load hits every implementation alike
    results = harness.time_interleaved(steps, warmup=200, repeats=9, min_time=0.2)
    rows = []
    torch_key = next((k for k in results if k.startswith("torch")), None)
    for name, r in results.items():
        us = r["median"] * 1e6
        row = {"implementation": name, "us / iteration": f"{us:.2f}",
               "us / op": f"{us / N_OPS:.2f}", "spread (min-max us)":
               f"{r['min'] * 1e6:.2f}-{r['max'] * 1e6:.2f}"}
        if torch_key:
            row["ratio to torch"] = f"{r['median'] / results[torch_key]['median']:.2f}"
        rows.append(row)
    table = harness.markdown_table(rows, list(rows[0].keys()))
    print(table)
    info = harness.machine_info()
    harness.write_json(args.json, {"machine": info, "results": results})
    if not args.no_readme:
        harness.update_readme(
            "Per-op autograd overhead (bench_overhead.py)",
            "Forward + backward of `(a * b + c).sum()` on 4x4 float32 tensors, 1 thread; "
            "3 ops per iteration, samples interleaved. Target: at most 5 us per op.\n\n"
            + harness.machine_markdown(info) + "\n\n" + table)
    return results


if __name__ == "__main__":
    main()
