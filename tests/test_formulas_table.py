"""docs/FORMULAS.md stays honest: every function and test it names exists, every formula test
is in the table, and the formulas the documents require have a row."""
import ast
import importlib
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "FORMULAS.md")
FORMULA_TESTS = [os.path.join(REPO, "tests", name)       # one test per formula
                 for name in ("test_formulas.py", "test_formulas_models.py")]
CELL_SPLIT = re.compile(r"(?<!\\)\|")            # `\|` inside a cell is a conditional bar
DOTTED = re.compile(r"`(tinygrad_llm(?:\.\w+)+)`")
CITED_TEST = re.compile(r"(tests/[\w/]+\.py)::(\w+)")

# Rows the issue asks for, by (part of) their Name column.
REQUIRED = [
    "Mean squared error", "Binary cross-entropy", "Cross-entropy, distribution targets",
    "Cross-entropy, class indices", "Cosine embedding loss", "Skip-gram negative sampling",
    "Gradient descent", "Stochastic gradient descent", "Momentum", "Adam", "AdamW",
    "Scaled dot-product attention", "Masked attention", "Cross attention",
    "multi-head attention", "Encoder layer (post-LN", "Decoder layer (post-LN",
    "positional encoding", "LSTM cell", "Softmax", "Perplexity", "BLEU", "ROUGE-N",
    "ROUGE-L", "Precision, recall, F1", "Accuracy", "L1 regularization",
    "L2 regularization", "Masked-LM masking", "Autoregressive pre-training formula",
    "Label-conditioned fine-tuning formula", "Embedding -> Linear -> Linear",
    "REINFORCE", "Q-learning", "Layer normalization", "Linear regression",
]


def table_rows():
    """(line number, {column: cell}) for every data row of every table in the document."""
    with open(DOC, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rows, header = [], None
    for k, line in enumerate(lines, start=1):
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in CELL_SPLIT.split(line.strip())[1:-1]]
        if header is None:
            header = cells
        elif set(line) <= set("|-: "):
            continue                                          # the separator row
        else:
            assert len(cells) == len(header), (
                f"FORMULAS.md line {k} has {len(cells)} cells, the table has {len(header)} "
                f"columns (an unescaped | in a formula?)")
            rows.append((k, dict(zip(header, cells))))
    return rows


ROWS = table_rows()


def resolve(dotted):
    """The object named by a dotted path, walked as attribute access (so a package's
    re-exported function wins over a submodule of the same name), importing submodules only
    where no attribute exists."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for k, name in enumerate(parts[1:], start=2):
        if hasattr(obj, name):
            obj = getattr(obj, name)
        else:
            obj = importlib.import_module(".".join(parts[:k]))
    return obj


def functions_in(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_table_is_not_empty():
    assert len(ROWS) >= 40, f"only {len(ROWS)} formula rows"


@pytest.mark.parametrize("line,row", ROWS, ids=[r["Name"] for _, r in ROWS])
def test_row_names_existing_functions_and_tests(line, row):
    paths = DOTTED.findall(row["Implementation"])
    assert paths, f"line {line}: no `tinygrad_llm....` implementation named"
    for path in paths:
        obj = resolve(path)
        assert callable(obj), f"line {line}: {path} is not callable"
    cited = CITED_TEST.findall(row["Test"])
    assert cited, f"line {line}: no tests/...py::test_name cited"
    for file, name in cited:
        full = os.path.join(REPO, file)
        assert os.path.exists(full), f"line {line}: {file} does not exist"
        assert name in functions_in(full), f"line {line}: {file}::{name} does not exist"


def test_every_formula_test_is_in_the_table():
    cited = {(file, name) for _, row in ROWS for file, name in CITED_TEST.findall(row["Test"])}
    tests = {(os.path.relpath(path, REPO), n) for path in FORMULA_TESTS
             for n in functions_in(path) if n.startswith("test_")}
    assert tests - cited == set(), f"tests missing from docs/FORMULAS.md: {tests - cited}"


@pytest.mark.parametrize("name", REQUIRED)
def test_required_formula_has_a_row(name):
    assert any(name.lower() in row["Name"].lower() for _, row in ROWS), (
        f"no row of docs/FORMULAS.md is named like {name!r}")
