"""The whole GPU check in one command (issue 19), written for one device call of <= 8 minutes.

    bash benchmarks/gpu/run.sh                       on the GPU machine (results under $OUT)
    python benchmarks/gpu/run.py --cpu-dry-run --out DIR     here, before any device time

Steps, in order; each is time-boxed, its failure is recorded and the later steps still run:
    env       versions (numpy, CuPy, numba, numba-cuda, torch), nvidia-smi, CUDA, shared memory
    install   numpy 2.4 from the carried wheel folder (numba-cuda 0.30 fails to import under
              numpy 2.5), then ``pip install --no-deps -e .``, then a one-kernel probe of
              numba-cuda (if it fails, the later steps run with TINYGRAD_LLM_KERNELS=ref and
              the summary says so)
    tests     ``pytest -m gpu tests/``: every CuPy case and every full-size CUDA kernel test
    train     ``tinygrad-llm train --device cuda --steps 200`` (trains, saves a checkpoint)
    generate  ``tinygrad-llm generate --device cuda`` from that checkpoint (reloads, samples)
    bench     bench_gpu.py: the table beside torch CUDA (float32, TF32 off)
    nccl      benchmarks/gpu/nccl_smoke.py when it exists (else a recorded skip)

``--cpu-dry-run`` runs what needs no GPU: the same argument parsing and wheel-folder check,
the install commands printed, the pytest selection resolved with --collect-only and checked,
the CLI arguments parsed by the CLI's own parser, and the benchmark harness on NumPy arrays at
tiny sizes against torch on the CPU.

Written under --out (at most 8 files come back from the device): results.jsonl (one JSON line
per command, flushed as it ends), log.txt (every command's full output), summary.md, env.json,
gpu_tests.xml, bench_gpu.json, bench_gpu.md. Scratch files (numba cache, the training run, the
numpy wheel's install target) go under /tmp, never under --out.
"""
import argparse
import glob
import os
import re
import shutil
import sys
import time

from runner import CAPS, RESERVE, ROOT, Runner  # noqa: F401  (this folder: the time budget)

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = tuple(CAPS)                        # env install tests train generate bench nccl
SITE = "/tmp/tgl_site"                     # where the numpy wheel is installed (--target)
RUN_DIR = "/tmp/tgl_gpu_run"               # the main job's output folder
WHEEL_HELP = ("bash benchmarks/gpu/fetch_wheels.sh   (runs: pip download 'numpy==2.4.*' "
              "--only-binary :all: --python-version 3.12 --platform manylinux2014_x86_64 ... "
              "-d .whl)")
TRAIN_ARGS = ["train", "--device", "cuda", "--steps", "200", "--max-chars", "300000",
              "--eval-interval", "100", "--no-progress", "--max-new-tokens", "40",
              "--out", RUN_DIR]
GENERATE_ARGS = ["generate", "--device", "cuda", "--checkpoint", RUN_DIR + "/checkpoint",
                 "--max-new-tokens", "60", "--prompt", "The "]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT") or os.path.join(
        ROOT, "benchmarks", "results", "gpu"), help="results folder (default: $OUT)")
    p.add_argument("--wheels", default=os.path.join(ROOT, ".whl"),
                   help="folder holding the numpy 2.4 wheel (default: .whl, git-ignored)")
    p.add_argument("--budget", type=float, default=450.0,
                   help="seconds for all steps together (default 450: 7.5 minutes)")
    p.add_argument("--steps", default=",".join(STEPS),
                   help=f"comma-separated subset of {','.join(STEPS)}")
    p.add_argument("--python-tag", default=None,
                   help="wheel tag to look for (default: this interpreter's, cp312 in a dry "
                        "run, as the device image has Python 3.12)")
    p.add_argument("--cpu-dry-run", action="store_true",
                   help="run every step that needs no GPU; print the others' commands")
    args = p.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad:
        p.error(f"unknown step(s) {bad}; choose from {','.join(STEPS)}")
    args.steps = steps
    if args.python_tag is None:
        args.python_tag = ("cp312" if args.cpu_dry_run
                           else f"cp{sys.version_info.major}{sys.version_info.minor}")
    if args.budget <= 0:
        p.error(f"--budget must be positive, got {args.budget}")
    return args


def find_numpy_wheel(folder, python_tag):
    """(path or None, message): a numpy 2.4.x wheel for this python tag and x86-64 Linux."""
    if not os.path.isdir(folder):
        return None, f"wheel folder {folder} does not exist; fill it with: {WHEEL_HELP}"
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.whl")))
    pattern = re.compile(rf"^numpy-2\.4\.\d+-{python_tag}-{python_tag}-.*x86_64\.whl$")
    hits = [n for n in names if pattern.match(n)]
    if len(hits) > 1:
        return None, f"several numpy 2.4 wheels for {python_tag} in {folder}: {hits}; keep one"
    if not hits:
        return None, (f"no numpy-2.4.*-{python_tag}-*x86_64.whl in {folder} (found: "
                      f"{names or 'nothing'}); fill it with: {WHEEL_HELP}")
    return os.path.join(folder, hits[0]), f"found {hits[0]}"


def py(*args):
    return [sys.executable, *args]


def cli_cmd(argv):
    """``tinygrad-llm ARGV``: the console script beside this interpreter (not another one's
    on PATH), else ``python -m tinygrad_llm.cli``."""
    exe = os.path.join(os.path.dirname(sys.executable), "tinygrad-llm")
    return ([exe] if os.path.exists(exe) else py("-P", "-m", "tinygrad_llm.cli")) + list(argv)


def check_cli_args(r, name, argv):
    """Dry run: the CLI's own parser accepts these arguments (catches a misspelt flag)."""
    code = ("import sys; from tinygrad_llm.cli import build_parser; "
            "a = build_parser().parse_args(sys.argv[1:]); print('parsed:', vars(a))")
    r.run(name, py("-c", code, *argv), r.timeout_for(name.split("/")[0]),
          note="CLI arguments parsed by the CLI's parser")


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------

def step_env(r):
    r.run("env", py(os.path.join(HERE, "env_report.py"), "--json",
                    os.path.join(r.out, "env.json")), r.timeout_for("env"), tail_lines=12)


def other_wheels(folder):
    """The carried wheels besides numpy's (pure-Python dependencies the image lacks)."""
    return sorted(p for p in glob.glob(os.path.join(folder, "*.whl"))
                  if not os.path.basename(p).startswith("numpy-"))


def pip_target(wheels):
    return py("-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
              "--no-cache-dir", "--upgrade", "--target", SITE, *wheels)


def use_site(r):
    r.env["PYTHONPATH"] = os.pathsep.join(p for p in (SITE, r.env.get("PYTHONPATH")) if p)


def step_install(r):
    args = r.args
    wheel, message = find_numpy_wheel(args.wheels, args.python_tag)
    others = other_wheels(args.wheels)
    pip_numpy = pip_target([wheel or "<numpy wheel>"] + others)
    pip_project = py("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                     "--no-index", "-e", ".")
    if args.cpu_dry_run:
        r.record("install/wheel-folder", "ok" if wheel else "fail", seconds=0.0, note=message)
        r.dry("install/numpy", pip_numpy, note=f"then PYTHONPATH={SITE} for every later step")
        r.dry("install/project", pip_project)
        r.dry("install/probe", py(os.path.join(HERE, "env_report.py"), "--probe"))
        return
    rc, text = r.run("install/numpy-version", py("-c", "import numpy; print(numpy.__version__)"),
                     30)
    have = tuple(int(x) for x in re.findall(r"\d+", text.strip().splitlines()[-1])[:2]) \
        if rc == 0 and text.strip() else None
    if have is not None and have < (2, 5):
        r.record("install/numpy", "skip", seconds=0.0, note=f"numpy {text.strip()} < 2.5 here")
        if others:
            rc, _ = r.run("install/wheels", pip_target(others), r.timeout_for("install"))
            if rc == 0:
                use_site(r)
    elif wheel is None:
        r.record("install/numpy", "fail", seconds=0.0, note=message)
    else:
        rc, _ = r.run("install/numpy", pip_numpy, r.timeout_for("install"), note=message)
        if rc == 0:
            use_site(r)
            r.run("install/numpy-check", py("-c", "import numpy, numba; from numba import cuda;"
                                            " print('numpy', numpy.__version__, numpy.__file__)"),
                  60)
    r.run("install/project", pip_project, r.timeout_for("install"))
    check = py("-c", "import tinygrad_llm, tinygrad_llm.kernels as K; print(tinygrad_llm.__file__)")
    rc, _ = r.run("install/import", check, 60, cwd="/tmp")
    if rc != 0:        # fallback: the source tree itself, kernels/ linked in as the audit says
        link = os.path.join(ROOT, "tinygrad_llm", "kernels")
        if not os.path.exists(link):
            os.symlink(os.path.join("..", "kernels"), link)
        r.env["PYTHONPATH"] = os.pathsep.join(p for p in (r.env.get("PYTHONPATH"), ROOT) if p)
        r.run("install/import-fallback", check, 60, cwd="/tmp",
              note="editable install failed; using the source tree on PYTHONPATH")
    rc, _ = r.run("install/probe", py(os.path.join(HERE, "env_report.py"), "--probe"), 90)
    if rc != 0:
        r.env["TINYGRAD_LLM_KERNELS"] = "ref"
        r.record("install/kernels", "fail", seconds=0.0,
                 note="numba-cuda cannot run kernels here: the later steps use "
                      "TINYGRAD_LLM_KERNELS=ref (CuPy reference), kernel tests will fail")


def step_tests(r):
    # -P: the repository root is not put on sys.path, so the top-level kernels/ folder is not
    # importable as "kernels" (transformers probes a PyPI package of that name), as under CI
    base = py("-P", "-m", "pytest", "-m", "gpu", "tests/", "-p", "no:cacheprovider")
    if r.args.cpu_dry_run:
        rc, text = r.run("tests/collect", base + ["--collect-only", "-q"],
                         r.timeout_for("tests"), tail_lines=5)
        ids = [line.strip() for line in text.splitlines() if "::" in line]
        problems = []
        if not any("test_kernels_cudasim.py" in i and "[gpu" in i for i in ids):
            problems.append("no full-size CUDA kernel test (test_kernels_cudasim [gpu-...])")
        if not any("cupy" in i for i in ids):
            problems.append("no CuPy-parametrized case")
        if any("[sim" in i for i in ids):
            problems.append("simulator cases selected")
        kernel_ids = [i for i in ids if "test_kernels_cudasim.py" in i]
        r.record("tests/selection", "fail" if problems or rc != 0 else "ok", seconds=0.0,
                 n_selected=len(ids), n_kernel_tests=len(kernel_ids),
                 files=sorted({i.split("::")[0] for i in ids}),
                 note="; ".join(problems) or f"{len(ids)} gpu tests selected, "
                 f"{len(kernel_ids)} of them full-size CUDA kernel tests")
        r.dry("tests/run", base + ["--durations=30", "-q"])
        return
    extra = []
    try:
        import importlib.util
        if importlib.util.find_spec("pytest_timeout") is not None:
            extra = ["--timeout=150"]
    except Exception:
        pass
    rc, text = r.run("tests", base + ["--durations=30", "-q", "-rfE",
                                      "--continue-on-collection-errors", "--junitxml",
                                      os.path.join(r.out, "gpu_tests.xml")] + extra,
                     r.timeout_for("tests"), tail_lines=60)
    counts = [line for line in text.splitlines()
              if re.search(r"\d+ (passed|failed|skipped|error)|no tests ran", line)]
    r.record("tests/summary", "info", seconds=0.0,
             note=counts[-1].strip("= ") if counts else "no pytest summary line")


def step_train(r):
    if r.args.cpu_dry_run:
        r.dry("train", cli_cmd(TRAIN_ARGS))
        check_cli_args(r, "train/args", TRAIN_ARGS)
        return
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    rc, _ = r.run("train", cli_cmd(TRAIN_ARGS), r.timeout_for("train"), tail_lines=30)
    saved = os.path.isdir(os.path.join(RUN_DIR, "checkpoint"))
    r.record("train/checkpoint", "ok" if saved else "fail", seconds=0.0,
             note=f"{RUN_DIR}/checkpoint {'written' if saved else 'missing'}")


def step_generate(r):
    if r.args.cpu_dry_run:
        r.dry("generate", cli_cmd(GENERATE_ARGS))
        check_cli_args(r, "generate/args", GENERATE_ARGS)
        return
    rc, text = r.run("generate", cli_cmd(GENERATE_ARGS), r.timeout_for("generate"))
    if rc == 0 and len(text.strip()) <= len("The "):
        r.record("generate/text", "fail", seconds=0.0, note="no text was generated")


def step_bench(r):
    cmd = py(os.path.join(HERE, "bench_gpu.py"), "--json", os.path.join(r.out, "bench_gpu.json"),
             "--md", os.path.join(r.out, "bench_gpu.md"))
    if r.args.cpu_dry_run:
        cmd += ["--device", "cpu", "--tiny", "--warmup", "1", "--repeats", "2",
                "--min-time", "0.002"]
    else:
        cmd += ["--device", "cuda"]
    r.run("bench", cmd, r.timeout_for("bench"), tail_lines=12)


def step_nccl(r):
    script = os.path.join(HERE, "nccl_smoke.py")
    if not os.path.exists(script):
        r.record("nccl", "skip", seconds=0.0, note="benchmarks/gpu/nccl_smoke.py does not exist")
        return
    if r.args.cpu_dry_run:
        r.run("nccl/compile", py("-m", "py_compile", script), 30)
        r.dry("nccl", py(script))
        return
    r.run("nccl", py(script), r.timeout_for("nccl"))


def write_summary(r):
    counts = {}
    for rec in r.records:
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
    lines = [f"# GPU check {'(CPU dry run) ' if r.args.cpu_dry_run else ''}"
             f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}", "",
             f"Total {r.elapsed():.1f}s of a {r.args.budget:.0f}s budget; "
             + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), ""]
    if r.env.get("TINYGRAD_LLM_KERNELS") == "ref":
        lines += ["**numba-cuda could not run a kernel: steps after install used "
                  "TINYGRAD_LLM_KERNELS=ref.**", ""]
    lines += ["| step | status | seconds | note |", "|---|---|---|---|"]
    for rec in r.records:
        note = str(rec.get("note", "")).replace("|", "/").replace("\n", " ")[:200]
        lines.append(f"| {rec['step']} | {rec['status']} | {rec.get('seconds', 0)} | {note} |")
    bench_md = os.path.join(r.out, "bench_gpu.md")
    if os.path.exists(bench_md):
        with open(bench_md, encoding="utf-8") as f:
            lines += ["", "## Table", "", f.read()]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(r.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print("\n" + text, flush=True)


def main(argv=None):
    args = parse_args(argv)
    r = Runner(args)
    r.record("start", "ok", seconds=0.0, note=f"steps {','.join(args.steps)}; out {r.out}; "
             f"dry run {args.cpu_dry_run}; python {sys.version.split()[0]}")
    funcs = {"env": step_env, "install": step_install, "tests": step_tests,
             "train": step_train, "generate": step_generate, "bench": step_bench,
             "nccl": step_nccl}
    for step in args.steps:
        try:
            funcs[step](r)
        except Exception as e:  # a bug in one step must not stop the others
            r.record(step, "fail", seconds=0.0, note=f"driver error: {type(e).__name__}: {e}")
    write_summary(r)
    r.close()
    bad = [rec for rec in r.records if rec["status"] in ("fail", "timeout")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
