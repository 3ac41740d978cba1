"""Per-op autograd overhead of two revisions of the library, alternated in one run (A/B).

    python benchmarks/bench_overhead_ab.py BASE_REV [NEW_REV] [--rounds 7]

Each revision is checked out into a temporary git worktree; every round runs one fresh process
per revision, in turn (A B A B ...), so machine load hits both alike. A process times forward +
backward of ``(a * b + c).sum()`` on 4x4 float32 tensors (1 thread; the work is tiny, so this is
the framework's Python overhead: graph building, the backward walk, gradient allocation) and
reports the minimum of 7 samples of 2,000 iterations, after checking the gradients. The
table gives each revision's median over the rounds and the ratio NEW / BASE.

It measures first-order training (create_graph=False) only, which is what the higher-order
gradient machinery must not slow down (issue 15: at most 5 %).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import os, sys, time, json
import numpy as np
import tinygrad_llm as tg
assert tg.__file__.startswith(sys.argv[1]), tg.__file__
rng = np.random.default_rng(0)
a, b, c = (tg.tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
           for _ in range(3))
def step():
    a.grad = b.grad = c.grad = None
    (a * b + c).sum().backward()
step()
np.testing.assert_allclose(a.grad.numpy(), b.detach().numpy(), rtol=1e-6)
np.testing.assert_allclose(c.grad.numpy(), np.ones((4, 4)), rtol=1e-6)
for _ in range(500):
    step()
best = float("inf")
for _ in range(7):
    t0 = time.perf_counter()
    for _ in range(2000):
        step()
    best = min(best, (time.perf_counter() - t0) / 2000)
print(json.dumps(best))
"""


def checkout(rev, where):
    """A worktree of ``rev`` importable as tinygrad_llm (kernels/ linked in as its .kernels)."""
    subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", where, rev],
                   check=True, capture_output=True)
    os.symlink(os.path.join(where, "kernels"), os.path.join(where, "tinygrad_llm", "kernels"))
    return subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def measure(tree):
    env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, os.path.join(tree, "tinygrad_llm")],
                         env=env, cwd=tempfile.gettempdir(), check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("new", nargs="?", default="HEAD")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        try:
            for label, rev in (("base", args.base), ("new", args.new)):
                where = os.path.join(tmp, label)
                trees[label] = (checkout(rev, where), where)
            samples = {label: [] for label in trees}
            for _ in range(args.rounds):
                for label, (_, where) in trees.items():
                    samples[label].append(measure(where))
        finally:
            for _, where in trees.values():
                subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", where],
                               capture_output=True)
    med = {label: statistics.median(s) for label, s in samples.items()}
    rows = [{"revision": f"{label} `{trees[label][0]}`",
             "median us / iteration": f"{med[label] * 1e6:.2f}",
             "range over rounds (us)": f"{min(s) * 1e6:.2f}-{max(s) * 1e6:.2f}",
             "ratio to base": f"{med[label] / med['base']:.3f}"}
            for label, s in samples.items()]
    table = harness.markdown_table(rows, list(rows[0].keys()))
    print(table)
    if not args.no_readme:
        harness.update_readme(
            "First-order overhead, before and after higher-order gradients (bench_overhead_ab.py)",
            f"Forward + backward of `(a * b + c).sum()`, 4x4 float32, 1 thread; each process "
            f"the min of 7 x 2,000 iterations, {args.rounds} rounds alternating the two "
            f"revisions. Target: new / base <= 1.05.\n\n"
            + harness.machine_markdown(harness.machine_info()) + "\n\n" + table)
    return med


if __name__ == "__main__":
    main()
