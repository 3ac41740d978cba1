"""Shared benchmark harness: thread settings, timing, machine info, JSON, README sections.

IMPORT ORDER: the thread-count variables are read by OpenBLAS / MKL / OpenMP / numba when
those libraries load, so call ``set_threads(n)`` before importing numpy (this module imports
nothing heavy at module level for that reason):

    import harness
    harness.set_threads(2)          # first
    import numpy as np              # then the libraries
    ...
    harness.torch_threads(torch)    # after importing torch (its pools are set by API calls)

API
    set_threads(n)                       env vars for every pool (+ numba/torch if loaded)
    torch_threads(torch)                 torch.set_num_threads(n), interop threads 1
    time_fn(fn, warmup=2, repeats=7, min_time=0.05) -> {"median", "min", "max", ...} seconds
    time_interleaved({name: fn}, ...) -> {name: result}   samples taken in turn (noisy hosts)
    machine_info() -> dict               cpu, nproc, versions, threads, BLAS, GPU
    write_json(path, payload)            (no-op when path is None)
    markdown_table(rows, columns) -> str rows: list of dicts
    update_readme(section_title, markdown, readme=None)   replace/append '## section_title'
"""
import json
import math
import os
import platform
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
               "RAYON_NUM_THREADS")
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")
_threads = None


def set_threads(n):
    """Set every thread-pool variable to n. Call before importing numpy (see module doc)."""
    global _threads
    _threads = int(n)
    for var in THREAD_VARS:
        os.environ[var] = str(_threads)
    if "numpy" in sys.modules:
        print("harness.set_threads: numpy was imported first; OpenBLAS may ignore the "
              "thread count", file=sys.stderr)
    if "numba" in sys.modules:
        import numba
        numba.set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        torch_threads(sys.modules["torch"])


def torch_threads(torch):
    """Apply the thread count to torch's intra-op pool (one interop thread)."""
    if _threads is not None:
        torch.set_num_threads(_threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only allowed before torch's first parallel work
            pass


def time_fn(fn, warmup=2, repeats=7, min_time=0.05):
    """Median/min/max seconds per call of fn().

    After ``warmup`` calls, each of ``repeats`` samples loops fn enough times to last at least
    ``min_time`` seconds (sub-millisecond calls) and divides back.
    """
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-9)
    inner = max(1, math.ceil(min_time / one)) if min_time > 0 else 1
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    ordered = sorted(samples)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
    return {"median": median, "min": ordered[0], "max": ordered[-1],
            "mean": sum(samples) / len(samples), "repeats": repeats, "inner_loops": inner,
            "samples": samples}


def time_interleaved(fns, warmup=2, repeats=7, min_time=0.05, settle=0.0):
    """Like time_fn for several functions {name: fn}, taking their samples in turn (A B C A B
    C ...), so that load from other processes on a shared machine hits all of them alike and
    their ratios stay meaningful. Returns {name: result dict}.

    ``settle`` > 0: before each sample the process sleeps that long, so that the worker
    threads of whatever ran before (OpenMP's spin-wait, OpenBLAS's ~0.1 s THREAD_TIMEOUT) are
    idle and cannot take the cores from the next implementation, then runs the implementation
    once untimed. Off by default: measured here, a millisecond kernel whose pool threads sleep
    between calls (ours) stayed ~1.4x slower for a whole 50 ms sample after such a pause
    (torch's spinning OpenMP pool did not), while a kernel in a training loop never pauses.
    bench_generate.py uses it: its samples are whole 1-10 s decoding loops.
    """
    inner = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-9)
        inner[name] = max(1, math.ceil(min_time / one)) if min_time > 0 else 1
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if settle:
                time.sleep(settle)
                fn()
            t0 = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner[name])
    out = {}
    for name, s in samples.items():
        ordered = sorted(s)
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
        out[name] = {"median": median, "min": ordered[0], "max": ordered[-1],
                     "mean": sum(s) / len(s), "repeats": repeats,
                     "inner_loops": inner[name], "samples": s}
    return out


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            info = {}
            for line in f:
                if ":" in line:
                    key, val = (s.strip() for s in line.split(":", 1))
                    info.setdefault(key, val)
        flags = info.get("flags", "").split()
        isa = [f for f in ("avx2", "avx512f", "avx512bw", "fma") if f in flags]
        return (f"{info.get('model name', platform.processor())} (family "
                f"{info.get('cpu family', '?')}, model {info.get('model', '?')}; "
                f"{' '.join(isa)})")
    except OSError:
        return platform.processor() or platform.machine()


def _version(name):
    mod = sys.modules.get(name)
    if mod is not None:
        return getattr(mod, "__version__", "?")
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return None


def _gpu_name():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        pass
    return None


def machine_info():
    """A dict describing the machine and software, for JSON files and README sections."""
    info = {
        "cpu": _cpu_model(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "scipy": _version("scipy"),
        "torch": _version("torch"),
        "threads": _threads,
        "thread_env": {v: os.environ.get(v) for v in THREAD_VARS},
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "gpu": _gpu_name(),
    }
    if "numba" in sys.modules:
        import numba
        info["numba_threads"] = numba.get_num_threads()
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "num_threads",
                                                      "architecture", "version")}
                               for p in threadpool_info()]
    except Exception:
        pass
    return info


def machine_markdown(info=None):
    """One paragraph of machine info for a README section."""
    info = info or machine_info()
    return (f"Machine: {info['cpu']}, {info['nproc']} CPUs; Python {info['python']}, "
            f"numpy {info['numpy']}, numba {info['numba']}, torch {info['torch']}; "
            f"threads {info['threads']}; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}; "
            f"GPU: {info['gpu'] or 'none'}.")


def write_json(path, payload):
    """Write payload as indented JSON (numpy scalars and arrays become numbers and lists)."""
    if not path:
        return

    def default(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        return str(o)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=default)
        f.write("\n")


def markdown_table(rows, columns):
    """A GitHub markdown table of ``rows`` (dicts) restricted to ``columns``, in order."""
    lines = ["| " + " | ".join(str(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def update_readme(section_title, markdown, readme=None):
    """Replace the '## section_title' section of benchmarks/README.md (or append it).

    A section runs from its '## ' heading to the next '## ' heading; the other sections and
    the text before the first heading are kept as they are.
    """
    path = readme or README
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    if not text.strip():
        text = "# Benchmarks\n\nMeasured tables written by the bench_*.py scripts.\n"
    heading = f"## {section_title}"
    body = f"{heading}\n\n{markdown.strip()}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + body
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + body + ("\n" + tail if tail else "")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, path)
