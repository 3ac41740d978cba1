"""Pictures: the computation graph as DOT (and SVG with Graphviz), attention heat maps."""
import shutil

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import nn
from tinygrad_llm.visualize import attention_heatmap, draw_graph, graph_to_dot


def small_graph():
    w = tg.randn(3, 2, requires_grad=True)
    x = tg.randn(4, 3)
    loss = (x @ w).tanh().sum()
    return loss, w


def test_dot_lists_every_op_and_names_the_leaves():
    loss, w = small_graph()
    dot = graph_to_dot(loss, names={"weight": w})
    for op in ("MatMul", "Tanh", "Sum"):
        assert op in dot
    assert 'label="weight\\n3x2"' in dot
    assert dot.count("->") == 4  # x, w -> matmul -> tanh -> sum
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")


def test_draw_graph_writes_dot_and_svg_or_explains(tmp_path):
    loss, _ = small_graph()
    assert draw_graph(loss, str(tmp_path / "g.dot")).endswith(".dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    if shutil.which("dot"):
        draw_graph(loss, str(tmp_path / "g.svg"))
        assert "<svg" in (tmp_path / "g.svg").read_text()
    else:
        with pytest.raises(RuntimeError, match="Graphviz"):
            draw_graph(loss, str(tmp_path / "g.svg"))


def test_attention_heatmap_of_multihead_weights(tmp_path):
    mha = nn.MultiheadAttention(8, 2)
    x = tg.randn(1, 5, 8)
    _, weights = mha(x, x, x, need_weights=True, average_attn_weights=False)
    assert weights.shape == (1, 2, 5, 5)
    path = attention_heatmap(weights.detach()[0], str(tmp_path / "attn.png"),
                             query_tokens=list("hello"))
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    with pytest.raises(ValueError, match="expected"):
        attention_heatmap(np.zeros(3), str(tmp_path / "bad.png"))
