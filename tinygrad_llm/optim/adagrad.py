"""Adagrad, written out as PyTorch's torch.optim.Adagrad (Duchi, Hazan & Singer, 2011).

For each parameter p with gradient g, at step t = 1, 2, ...:

    g   = -g                                   maximize only: ascend instead
    g   = g + weight_decay * p                 L2 penalty in the gradient
    clr = lr / (1 + (t - 1) * lr_decay)        the decayed learning rate
    s   = s + g^2                              sum of every squared gradient so far (sum),
                                               starting at initial_accumulator_value
    p   = p - clr * g / (sqrt(s) + eps)

Each coordinate's step shrinks as its gradients add up: rarely updated coordinates keep
large steps. The state is created when the optimizer is built (as PyTorch does), so
state_dict() holds a zero step and the initial sums before the first step.
"""
from ..autograd import no_grad
from ..backend import get_array_module
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad with PyTorch's options and defaults (see the module docstring)."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if lr_decay < 0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if initial_accumulator_value < 0:
            raise ValueError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if differentiable or fused:
            raise ValueError("Adagrad: differentiable and fused are options this framework "
                             "does not have; leave them unset")
        # foreach (a speed option: one fused call over all tensors) is accepted and ignored
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay,
                                  "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "eps": eps, "maximize": maximize})
        for group in self.param_groups:
            for name, p in zip(group["param_names"], group["params"]):
                self._init_state(name, p, group)

    def _init_state(self, name, p, group):
        xp = get_array_module(p.data)
        state = {"step": 0,
                 # s: the sum of squared gradients, from initial_accumulator_value
                 "sum": xp.full_like(p.data, group["initial_accumulator_value"])}
        self.state[name] = state
        return state

    @no_grad()
    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, lr_decay = group["lr"], group["lr_decay"]
            weight_decay, eps = group["weight_decay"], group["eps"]
            for name, p, g in self._params_with_grad(group):
                xp = get_array_module(g)
                state = self.state.get(name) or self._init_state(name, p, group)
                state["step"] += 1
                t = state["step"]
                if group["maximize"]:
                    g = -g
                if weight_decay != 0:
                    # g = g + wd p: the gradient of (wd / 2) |p|^2
                    g = g + weight_decay * p.data
                # clr = lr / (1 + (t - 1) lr_decay)
                clr = lr / (1 + (t - 1) * lr_decay)
                # s = s + g^2
                s = state["sum"]
                s += g * g
                # p = p - clr g / (sqrt(s) + eps)
                p.data -= clr * (g / (xp.sqrt(s) + eps))
                self._updated(p)
        return loss
