"""Fit y = sin(x) with a third-order polynomial, as PyTorch's "nn" and "optim" tutorials do
(a Linear layer over the features x, x^2, x^3), grown the way a user grows it: a
TensorDataset split into training and validation sets, DataLoaders, Adagrad, an evaluation
loop under no_grad, and the best model saved and loaded back. As in PyTorch, with only the
import lines changed (``import tinygrad_llm as torch`` and the torch.utils.data line).

tests/test_torch_programs.py runs it as it is and under real torch from the same weights.

    python examples/torch_style/polynomial_dataloader.py --epochs 30
"""
import argparse
import math
import os
import tempfile

import tinygrad_llm as torch
from tinygrad_llm.utils.data import DataLoader, TensorDataset, random_split


def make_dataset(n=2000):
    x = torch.linspace(-math.pi, math.pi, n)
    y = torch.sin(x)
    p = torch.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)                 # (n, 3): x, x^2, x^3
    return TensorDataset(xx, y)


def build_model():
    return torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))


def train_epoch(model, loader, loss_fn, optimizer):
    model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        count += len(xb)
    return total / count


@torch.no_grad()
def evaluate(model, loader, loss_fn):
    model.eval()
    total, count = 0.0, 0
    for xb, yb in loader:
        total += loss_fn(model(xb), yb).item() * len(xb)
        count += len(xb)
    return total / count


def fit(model, train_loader, val_loader, epochs, lr, path):
    """Train with Adagrad; keep the weights of the best validation loss in ``path``."""
    loss_fn = torch.nn.MSELoss()
    optimizer = torch.optim.Adagrad(model.parameters(), lr=lr)
    best, history = math.inf, []
    for epoch in range(epochs):
        train_loss = train_epoch(model, train_loader, loss_fn, optimizer)
        val_loss = evaluate(model, val_loader, loss_fn)
        history.append((train_loss, val_loss))
        if val_loss < best:
            best = val_loss
            torch.save(model.state_dict(), path)
        print(f"epoch {epoch + 1:3d}  train {train_loss:.5f}  val {val_loss:.5f}")
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default=None, help="checkpoint path (default: a temp dir)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    dataset = make_dataset()
    train_set, val_set = random_split(dataset, [0.8, 0.2],
                                      generator=torch.Generator().manual_seed(42))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=256)

    model = build_model()
    path = args.out or os.path.join(tempfile.mkdtemp(), "best.pt")
    history = fit(model, train_loader, val_loader, args.epochs, args.lr, path)

    model.load_state_dict(torch.load(path))
    linear = model[0]
    print(f"Result: y = {linear.bias.item():.4f} + {linear.weight[:, 0].item():.4f} x + "
          f"{linear.weight[:, 1].item():.4f} x^2 + {linear.weight[:, 2].item():.4f} x^3")
    return {"history": history, "model": model, "best_val": min(v for _, v in history)}


if __name__ == "__main__":
    main()
