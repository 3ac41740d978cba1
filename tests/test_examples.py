"""The example scripts run from the command line and learn."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_trains_and_generates():
    out = subprocess.run([sys.executable, os.path.join(REPO, "examples", "quickstart.py"),
                          "--steps", "200"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    losses = [float(line.split()[-1]) for line in out.stdout.splitlines()
              if line.startswith("step")]
    assert losses[0] > 3.0 and losses[-1] < 1.8, losses
    generated = out.stdout.split(f"loss {losses[-1]:.3f}")[-1]
    assert len(generated.strip()) > 150  # 200 sampled characters follow the last loss line
