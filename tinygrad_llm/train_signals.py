"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a cluster's preemption).

The first signal only sets a flag (``SignalFlag``): train() finishes the step in flight, saves
a checkpoint and raises TrainingInterrupted. A second signal raises TrainingAborted at once,
writing nothing. Both are KeyboardInterrupts that carry the exit code 128 + signal number.
"""
import signal
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped at a step boundary on a signal, after saving a checkpoint."""

    def __init__(self, signum, step, checkpoint):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} after step {step}: "
                         f"checkpoint saved to {checkpoint}")

    def __reduce__(self):               # picklable (e.g. across processes)
        return type(self), (self.signum, self.step, self.checkpoint)


class TrainingAborted(KeyboardInterrupt):
    """A second signal arrived: training stopped at once and nothing was saved."""

    def __init__(self, signum):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"aborted by a second {signal.Signals(signum).name}")

    def __reduce__(self):
        return type(self), (self.signum,)


class SignalFlag:
    """While active, SIGINT/SIGTERM set ``self.signum``; a second one raises TrainingAborted.

    Installed only in the main thread (the only one Python delivers signals to) and only for
    signals that are not ignored (a background job's SIGINT stays ignored).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled=True, data_parallel=False):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.data_parallel = data_parallel
        self.signum = None
        self._adopted = False   # signum came from another rank: our own copy is not a 2nd one
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None and not self._adopted:
            raise TrainingAborted(signum)
        self.signum, self._adopted = signum, False

    def adopt(self, signum):
        """Data-parallel: some rank was signalled, so every rank stops after this step; the
        same signal reaching this rank later (mpiexec forwards it to all) is not a second."""
        if self.signum is None and signum is not None:
            self.signum, self._adopted = signum, True

    def __enter__(self):
        if self.enabled:
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            if self.data_parallel and sig == self.signum:
                # the job ends because of this signal: mpiexec forwards it to every rank, and
                # a copy that reaches this rank late must not interrupt its exit (a rank
                # interrupted inside MPI's shutdown can hang the whole job)
                signal.signal(sig, signal.SIG_IGN)
                continue
            # None: a handler not set from Python; the default is the closest we can restore
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
        return False
