"""Fit y = sin(x) on [-pi, pi] with y = a + b * P3(c + d * x), where P3 is the Legendre
polynomial of degree three written as a custom autograd.Function (PyTorch's "Defining new
autograd functions" tutorial), trained with RMSprop. As the tutorial, with only the import
changed (``import tinygrad_llm as torch``; was ``import torch``).

tests/test_torch_programs.py runs it as it is and under real torch and compares the losses
(no random numbers are drawn, so both start from the same values).

    python examples/torch_style/polynomial_custom_function.py --steps 2000
"""
import argparse
import math

import tinygrad_llm as torch


class LegendrePolynomial3(torch.autograd.Function):
    """P3(x) = (5 x^3 - 3 x) / 2, and its derivative P3'(x) = 1.5 (5 x^2 - 1)."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args(argv)

    dtype = torch.float
    device = torch.device("cpu")

    x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
    y = torch.sin(x)

    # The weights start close enough to the solution for the fit to converge.
    a = torch.full((), 0.1, device=device, dtype=dtype, requires_grad=True)
    b = torch.full((), -1.0, device=device, dtype=dtype, requires_grad=True)
    c = torch.full((), 0.1, device=device, dtype=dtype, requires_grad=True)
    d = torch.full((), 0.3, device=device, dtype=dtype, requires_grad=True)

    optimizer = torch.optim.RMSprop([a, b, c, d], lr=args.lr)
    losses = []
    for t in range(args.steps):
        P3 = LegendrePolynomial3.apply
        y_pred = a + b * P3(c + d * x)

        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        if t % 100 == 99:
            print(t, f"{loss.item():.4f}")

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    print(f"Result: y = {a.item()} + {b.item()} * P3({c.item()} + {d.item()} x)")
    return {"losses": losses, "coefficients": [a.item(), b.item(), c.item(), d.item()]}


if __name__ == "__main__":
    main()
