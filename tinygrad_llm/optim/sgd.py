"""Gradient descent and SGD with momentum, written out as PyTorch's torch.optim.SGD.

    GD:   p_t = p_{t-1} - lr * g_t                            (the documents' formula)

    SGD:  g_t = g_t + weight_decay * p_{t-1}                  (L2 penalty, if weight_decay)
          b_t = g_t                                           at the first step,
          b_t = momentum * b_{t-1} + (1 - dampening) * g_t    afterwards  (velocity)
          d_t = g_t + momentum * b_t   (nesterov)   or   d_t = b_t
          p_t = p_{t-1} - lr * d_t

"Stochastic" refers to the gradient of a mini-batch; the update itself is the same.
"""
from ..autograd import no_grad
from ..backend import get_array_module
from .optimizer import Optimizer


class GD(Optimizer):
    """Plain gradient descent: p <- p - lr * grad (no state)."""

    def __init__(self, params, lr=1e-2):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, {"lr": lr})

    @no_grad()
    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            for _, p, g in self._params_with_grad(group):
                # p_t = p_{t-1} - lr * g_t
                p.data -= group["lr"] * g
                self._updated(p)
        return loss


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and weight decay (L2)."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    @no_grad()
    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            dampening, weight_decay = group["dampening"], group["weight_decay"]
            for name, p, g in self._params_with_grad(group):
                if weight_decay != 0:
                    # the gradient of the L2 penalty (weight_decay / 2) |p|^2
                    g = g + weight_decay * p.data
                if momentum != 0:
                    state = self.state.setdefault(name, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        # b_1 = g_1: the velocity starts at the first gradient
                        # (an array even for a 0-d parameter, so that it updates in place)
                        buf = state["momentum_buffer"] = get_array_module(g).array(g)
                    else:
                        # b_t = momentum * b_{t-1} + (1 - dampening) * g_t
                        buf *= momentum
                        buf += (1 - dampening) * g
                    if group["nesterov"]:
                        # look ahead: d_t = g_t + momentum * b_t
                        g = g + momentum * buf
                    else:
                        g = buf
                # p_t = p_{t-1} - lr * d_t
                p.data -= lr * g
                self._updated(p)
        return loss
