"""Learning-rate schedules, as torch.optim.lr_scheduler and Hugging Face's warmup schedules.

A scheduler sets ``group["lr"]`` of every parameter group from the group's initial lr and the
step count ``last_epoch`` (0 right after construction; +1 per ``step()``, called once after
each ``optimizer.step()``):

    LambdaLR                          lr = initial_lr * lr_lambda(last_epoch)
    StepLR                            lr = initial_lr * gamma ^ floor(last_epoch / step_size)
    get_linear_schedule_with_warmup   factor s / w during w warmup steps, then a straight line
                                      down to 0 at num_training_steps
    get_cosine_schedule_with_warmup   the same warmup, then 0.5 (1 + cos(pi * 2 cycles *
                                      progress)): half a cosine from 1 to 0 by default

``state_dict()`` is JSON-able: the step count, base lrs, last lrs, and for LambdaLR the
attributes of callable-object lambdas (the warmup schedules are such objects, so their state
round-trips; a plain function or lambda is not saved, as in PyTorch).
"""
import math
import types


class LRScheduler:
    """Base class: subclasses define ``get_lr()`` from ``self.last_epoch``."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for k, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{k}] "
                                   f"when resuming an optimizer")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()  # lr for step 0

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The lrs set by the latest step(), one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(last_epoch); one function, or a list with one per group."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"Expected {n} lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        state = {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}
        # plain functions are not saved; callable objects save their attributes
        state["lr_lambdas"] = [None if _is_function(fn) else dict(vars(fn))
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        lambdas = state.pop("lr_lambdas", None) or []
        super().load_state_dict(state)
        for fn, saved in zip(self.lr_lambdas, lambdas):
            if saved is not None:
                vars(fn).update(saved)


def _is_function(fn):
    return isinstance(fn, (types.FunctionType, types.MethodType, types.BuiltinFunctionType))


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ^ floor(last_epoch / step_size): decay by gamma every
    step_size steps."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) != step_size or step_size <= 0:
            raise ValueError(f"step_size must be a positive integer, got {step_size}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


# ----- Hugging Face's warmup schedules (transformers.optimization), as LambdaLR factors --------

class LinearWarmupDecay:
    """s < w: s / max(1, w);  then max(0, (n - s) / max(1, n - w))."""

    def __init__(self, num_warmup_steps, num_training_steps):
        self.num_warmup_steps = int(num_warmup_steps)
        self.num_training_steps = int(num_training_steps)

    def __call__(self, step):
        w, n = self.num_warmup_steps, self.num_training_steps
        if step < w:
            return float(step) / float(max(1, w))
        return max(0.0, float(n - step) / float(max(1, n - w)))


class CosineWarmupDecay:
    """s < w: s / max(1, w);  then max(0, 0.5 (1 + cos(pi * 2 num_cycles * progress))) with
    progress = (s - w) / max(1, n - w)."""

    def __init__(self, num_warmup_steps, num_training_steps, num_cycles=0.5):
        self.num_warmup_steps = int(num_warmup_steps)
        self.num_training_steps = int(num_training_steps)
        self.num_cycles = float(num_cycles)

    def __call__(self, step):
        w, n = self.num_warmup_steps, self.num_training_steps
        if step < w:
            return float(step) / float(max(1, w))
        progress = float(step - w) / float(max(1, n - w))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * self.num_cycles * 2.0 * progress)))


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps,
                                    last_epoch=-1):
    """lr rises linearly from 0 to the optimizer's lr over num_warmup_steps, then falls
    linearly to 0 at num_training_steps (Hugging Face's definition)."""
    return LambdaLR(optimizer, LinearWarmupDecay(num_warmup_steps, num_training_steps),
                    last_epoch)


def get_cosine_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps,
                                    num_cycles=0.5, last_epoch=-1):
    """Linear warmup as above, then cosine decay from the lr to 0 (num_cycles=0.5: half a
    cosine wave) at num_training_steps (Hugging Face's definition)."""
    return LambdaLR(optimizer, CosineWarmupDecay(num_warmup_steps, num_training_steps,
                                                 num_cycles), last_epoch)
