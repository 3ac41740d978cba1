"""Shared by the tests that interrupt mpiexec (test_distributed.py, test_distributed_cli.py)."""
import time


def ctrl_c_reaches_it():
    """In the child before exec: SIGINT back to its default action. A shell that started the
    test run in the background made SIGINT ignored, and mpiexec would inherit that."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Output:
    """Reads a child's stdout and stderr on threads, so that waiting for a line can time out
    (a blocking readline cannot)."""

    def __init__(self, proc):
        import threading
        self.out, self.err = [], []
        self.threads = [threading.Thread(target=self._pump, args=(f, lines), daemon=True)
                        for f, lines in ((proc.stdout, self.out), (proc.stderr, self.err))]
        for t in self.threads:
            t.start()

    @staticmethod
    def _pump(f, lines):
        for line in f:
            lines.append(line)

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.out)):
                return True
            time.sleep(0.05)
        return False

    def finish(self, timeout=10):
        for t in self.threads:
            t.join(timeout)
        return "".join(self.out), "".join(self.err)
