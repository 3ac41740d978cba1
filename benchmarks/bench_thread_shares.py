"""When a second thread pays: the row and elementwise kernels on one thread and on two.

    python benchmarks/bench_thread_shares.py [--repeats 15] [--out results.json] [--no-readme]

For each kernel (softmax forward, layer norm forward, GELU-tanh forward) and array size, the
kernel runs with the pool limited to one thread and with two threads, samples taken in turn
(A B A B ...), after checking that both give the same values. Also timed: one hand-off to the
pool with a kernel that does nothing (what a split costs before any work), and the same split
as a numba ``prange`` over two chunks (numba's OpenMP workers), the yardstick for a hand-off.

The library splits a call only when each thread gets at least
``_dispatch.MIN_VALUES_PER_THREAD`` values; the table shows why on this machine.
Writes the "Thread shares" section of benchmarks/README.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SIZES = [1 << 13, 1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21]
COLUMNS = 256                       # row length of the softmax and layer-norm cases


def _prange_runner(kernel):
    """kernel(first, stop, step, x, y) split over two chunks by numba's prange (OpenMP)."""
    from numba import njit, prange

    @njit(parallel=True, nogil=True)
    def run(n_items, x, y):
        for t in prange(2):
            kernel(t, n_items, 2, x, y)
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", default=None)
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args()
    harness.set_threads(2)
    import numpy as np
    from numba import njit

    from tinygrad_llm.kernels import _dispatch as D
    from tinygrad_llm.kernels import _threads, gelu, layer_norm, softmax

    two = D.num_threads
    if two() < 2:
        sys.exit("bench_thread_shares: needs 2 threads (NUMBA_NUM_THREADS >= 2)")

    def threads(n):
        D.num_threads = (lambda: 1) if n == 1 else two

    @njit(nogil=True)
    def nothing(first, stop, step, x):
        pass

    x0 = np.zeros(4)
    res = harness.time_interleaved(
        {"1": lambda: D.parallel_items(nothing, 1, x0),
         "2": lambda: D.parallel_items(nothing, 2, x0)},
        repeats=args.repeats, min_time=0.02)
    handoff = (res["2"]["median"] - res["1"]["median"]) * 1e6
    rows = []
    rng = np.random.default_rng(0)
    prange_gelu = _prange_runner(gelu._gelu_fwd_cpu)
    for n in SIZES:
        x = (rng.standard_normal((n // COLUMNS, COLUMNS)) * 3).astype(np.float32)
        w = np.ones(COLUMNS, np.float32)
        b = np.zeros(COLUMNS, np.float32)
        flat = x.reshape(-1)
        y_pr = np.empty_like(flat)
        n_blocks = -(-flat.size // gelu._BLOCK)
        cases = {
            "softmax forward": lambda: softmax.softmax_forward(x),
            "layer norm forward": lambda: layer_norm.layer_norm_forward(x, w, b)[0],
            "GELU-tanh forward": lambda: gelu.gelu_tanh_forward(flat),
        }
        for name, fn in cases.items():
            saved = D.MIN_VALUES_PER_THREAD
            D.MIN_VALUES_PER_THREAD = 1          # let every size split, to measure it
            try:
                threads(1)
                ref = fn().copy()
                threads(2)
                np.testing.assert_array_equal(fn(), ref)

                def one(fn=fn):
                    threads(1)
                    fn()

                def pair(fn=fn):
                    threads(2)
                    fn()
                fns = {"1": one, "2": pair}
                if name.startswith("GELU"):
                    prange_gelu(n_blocks, flat, y_pr)
                    np.testing.assert_array_equal(y_pr, ref)
                    fns["prange"] = lambda: prange_gelu(n_blocks, flat, y_pr)
                t = harness.time_interleaved(fns, repeats=args.repeats, min_time=0.02)
            finally:
                D.MIN_VALUES_PER_THREAD = saved
                threads(2)
            t1, t2 = t["1"]["median"] * 1e6, t["2"]["median"] * 1e6
            rows.append({"kernel": name, "values": f"{n:,}", "1 thread (us)": f"{t1:.0f}",
                         "2 threads, pool (us)": f"{t2:.0f}",
                         "2 threads, prange (us)": (f"{t['prange']['median'] * 1e6:.0f}"
                                                    if "prange" in t else "-"),
                         "pool speedup": f"{t1 / t2:.2f}x",
                         "split by the library": "yes" if n // 2 >= saved else "no"})
            print(rows[-1], flush=True)
    md = "\n".join([
        "One call of each kernel on one thread and split over two (the kernels' pool:",
        "`_dispatch.parallel_items`), samples interleaved; medians of "
        f"{args.repeats} samples. Outputs checked equal before timing.",
        "", harness.machine_markdown(), "",
        f"A hand-off to the pool (a split of a kernel that does nothing) costs "
        f"{handoff:.0f} us here: the workers spin between calls (kernels/_threads.py, up to "
        f"{_threads.SPIN_US:.0f} us before they sleep), as numba's OpenMP workers do in the "
        "prange column (the same GELU kernel over two chunks). The library splits a call "
        "only when each thread gets at least `_dispatch.MIN_VALUES_PER_THREAD` = "
        f"2^{D.MIN_VALUES_PER_THREAD.bit_length() - 1} values (last column): higher than "
        "this table alone asks for, because in generation without a cache the same kernels "
        "run between products on OpenBLAS's own threads, and splits from 2^15 values per "
        "thread made that 10-20 % slower (benchmarks/README.md, session 9).",
        "", harness.markdown_table(rows, list(rows[0]))])
    harness.write_json(args.out, {"rows": rows, "handoff_us": handoff,
                                  "machine": harness.machine_info()})
    if not args.no_readme:
        harness.update_readme("Thread shares (bench_thread_shares.py)", md)
    print(md)


if __name__ == "__main__":
    main()
