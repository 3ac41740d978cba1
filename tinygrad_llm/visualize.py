"""Pictures: the computation graph of a tensor (DOT text, and SVG/PNG when Graphviz is installed)
and attention weights as heat maps (PNG).

    loss = model(x, y)[1]
    print(graph_to_dot(loss))                       # paste into any Graphviz viewer
    draw_graph(loss, "graph.svg")                   # needs the `dot` program
    attention_heatmap(weights, "attn.png", tokens)  # weights (Tq, Tk) or (H, Tq, Tk)

The graph is read from the tensors' ``_ctx`` links: one box per op (its Function's name) and
one ellipse per leaf tensor (named when you pass ``names``, e.g. dict(model.named_parameters())),
with the shape on every edge. It must be drawn before backward() frees the graph (or after
backward(retain_graph=True)).
"""
import os
import shutil
import subprocess

import numpy as np

from .backend import to_numpy


def _label(node):
    return type(node).__name__


class _Output:
    """What the drawing needs of an op's output that the graph no longer holds."""

    def __init__(self, node):
        self._ctx, self.shape, self.requires_grad = node, node._out_shape, True


def graph_to_dot(root, names=None, max_nodes=2000):
    """DOT source of the graph that produced ``root`` (a Tensor)."""
    names = {id(t): n for n, t in (names or {}).items()}
    lines = ["digraph tinygrad_llm {", "  rankdir=BT;",
             '  node [fontname="Helvetica", fontsize=10];']
    seen, order = set(), []
    stand_ins = {}           # a node in a parent list (autograd.Function's notes) -> its output

    def as_tensor(parent):
        if parent._ctx is not parent:        # a Tensor (a node's _ctx is the node itself)
            return parent
        if parent not in stand_ins:
            stand_ins[parent] = _Output(parent)
        return stand_ins[parent]
    stack = [root]
    while stack and len(order) < max_nodes:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        order.append(t)
        if t._ctx is not None:
            for parent in getattr(t._ctx, "parents", ()) or ():
                if parent is not None:
                    stack.append(as_tensor(parent))
    ids = {id(t): f"n{i}" for i, t in enumerate(order)}
    for t in order:
        shape = "x".join(str(n) for n in t.shape) or "scalar"
        if t._ctx is None:
            name = names.get(id(t), "leaf" if t.requires_grad else "const")
            style = ', style=filled, fillcolor="#dbe9f6"' if t.requires_grad else ""
            lines.append(f'  {ids[id(t)]} [shape=ellipse, label="{name}\\n{shape}"{style}];')
        else:
            freed = " (freed)" if getattr(t._ctx, "_freed", False) else ""
            lines.append(f'  {ids[id(t)]} [shape=box, label="{_label(t._ctx)}{freed}\\n'
                         f'{shape}"];')
            for parent in getattr(t._ctx, "parents", ()) or ():
                shown = None if parent is None else ids.get(id(as_tensor(parent)))
                if shown is not None:
                    lines.append(f"  {shown} -> {ids[id(t)]};")
    if len(order) >= max_nodes:
        lines.append(f'  truncated [shape=note, label="graph truncated at {max_nodes} nodes"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_graph(root, path, names=None):
    """Write the graph as .dot always; as .svg/.png through Graphviz's ``dot`` when installed.

    Returns the path written. Without Graphviz, an .svg/.png request writes the .dot file next
    to it and says so in a RuntimeError.
    """
    dot_source = graph_to_dot(root, names)
    stem, ext = os.path.splitext(path)
    if ext == ".dot":
        with open(path, "w", encoding="utf-8") as f:
            f.write(dot_source)
        return path
    if ext not in (".svg", ".png", ".pdf"):
        raise ValueError(f"draw_graph: unsupported file type {ext!r} (use .dot, .svg, .png)")
    dot = shutil.which("dot")
    if dot is None:
        with open(stem + ".dot", "w", encoding="utf-8") as f:
            f.write(dot_source)
        raise RuntimeError(f"Graphviz's `dot` program is not installed; wrote {stem}.dot "
                           f"instead (install graphviz to render {ext})")
    subprocess.run([dot, f"-T{ext[1:]}", "-o", path], input=dot_source.encode(), check=True)
    return path


def attention_heatmap(weights, path, query_tokens=None, key_tokens=None, title=None):
    """A PNG of attention weights: (Tq, Tk), or (H, Tq, Tk) drawn as one panel per head."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    w = to_numpy(getattr(weights, "data", weights))
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"attention_heatmap: expected (Tq, Tk) or (H, Tq, Tk), got {w.shape}")
    heads, tq, tk = w.shape
    key_tokens = key_tokens if key_tokens is not None else query_tokens
    cols = min(heads, 4)
    rows = -(-heads // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 1, 3.2 * rows + 0.5),
                             squeeze=False)
    for h in range(rows * cols):
        ax = axes[h // cols][h % cols]
        if h >= heads:
            ax.axis("off")
            continue
        im = ax.imshow(w[h], cmap="viridis", vmin=0.0, vmax=max(float(np.max(w)), 1e-12))
        ax.set_title(f"head {h}" if heads > 1 else (title or "attention"), fontsize=9)
        if query_tokens is not None and len(query_tokens) == tq and tq <= 40:
            ax.set_yticks(range(tq), [str(t) for t in query_tokens], fontsize=7)
        if key_tokens is not None and len(key_tokens) == tk and tk <= 40:
            ax.set_xticks(range(tk), [str(t) for t in key_tokens], fontsize=7, rotation=90)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
    if title and heads > 1:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
