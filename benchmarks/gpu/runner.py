"""The time-boxed command runner of benchmarks/gpu/run.py: each step's cap, the reserve kept
for the steps after it, and the log and JSON lines every command leaves under --out."""
import json
import os
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPS = {"env": 45, "install": 90, "tests": 170, "train": 120, "generate": 45, "bench": 150,
        "nccl": 45}                       # seconds per step at most, in the order they run
RESERVE = 15                               # seconds kept back for each later step


class Runner:
    """Runs commands time-boxed, appends their output to log.txt and one JSON line each to
    results.jsonl, and keeps the time budget."""

    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        os.makedirs(self.out, exist_ok=True)
        self.t0 = time.monotonic()
        self.records = []
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", CUPY_TF32="0")
        if not args.cpu_dry_run or "NUMBA_CACHE_DIR" not in self.env:
            self.env["NUMBA_CACHE_DIR"] = "/tmp/tgl_numba_cache"    # (the dry run keeps CI's)
        self.env.setdefault("OPENBLAS_NUM_THREADS", "4")
        self.log = open(os.path.join(self.out, "log.txt"), "a", encoding="utf-8")
        self.jsonl = open(os.path.join(self.out, "results.jsonl"), "a", encoding="utf-8")

    def elapsed(self):
        return time.monotonic() - self.t0

    def timeout_for(self, step):
        later = self.args.steps[self.args.steps.index(step) + 1:]
        left = self.args.budget - self.elapsed() - RESERVE * len(later)
        return max(5.0, min(CAPS[step], left))

    def record(self, name, status, **fields):
        rec = {"step": name, "status": status, "at_s": round(self.elapsed(), 1), **fields}
        self.records.append(rec)
        self.jsonl.write(json.dumps(rec) + "\n")
        self.jsonl.flush()
        note = fields.get("note", "")
        print(f"[{rec['at_s']:6.1f}s] {name}: {status.upper()} "
              f"({fields.get('seconds', 0):.1f}s) {note}", flush=True)
        return rec

    def run(self, name, cmd, timeout, cwd=ROOT, note="", tail_lines=25):
        """Run cmd (a list) with a timeout; record and return (rc, output text)."""
        self.log.write(f"\n===== {name} (timeout {timeout:.0f}s): {' '.join(cmd)}\n")
        self.log.flush()
        start = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    start_new_session=True)
        except OSError as e:
            self.record(name, "fail", seconds=0.0, cmd=cmd, note=f"cannot start: {e}")
            return None, ""
        try:
            text, _ = proc.communicate(timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)           # the whole process group
            try:
                text, _ = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                text, _ = proc.communicate()
            rc = None
        seconds = time.monotonic() - start
        self.log.write(text or "")
        self.log.write(f"===== {name}: rc={rc} in {seconds:.1f}s\n")
        self.log.flush()
        tail = "\n".join((text or "").rstrip().splitlines()[-tail_lines:])
        if tail:
            print(tail, flush=True)
        status = "timeout" if rc is None else ("ok" if rc == 0 else "fail")
        self.record(name, status, seconds=round(seconds, 1), rc=rc, cmd=cmd,
                    note=note, tail=tail[-2000:])
        return rc, text or ""

    def dry(self, name, cmd, note=""):
        """Record a command that the dry run shows but does not run."""
        print(f"  would run: {' '.join(cmd)}", flush=True)
        return self.record(name, "dry", seconds=0.0, cmd=cmd, note=note)

    def close(self):
        self.log.close()
        self.jsonl.close()
