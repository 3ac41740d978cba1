"""The docs stay honest: every test they cite exists."""
import ast
import functools
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(REPO, "docs", name) for name in sorted(os.listdir(os.path.join(REPO, "docs")))
        if name.endswith(".md")]


@functools.lru_cache(maxsize=None)
def functions_in(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("doc", DOCS, ids=os.path.basename)
def test_cited_tests_exist(doc):
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    cited = re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", text)
    assert cited, f"{doc} cites no test"
    for path, name in cited:
        full = os.path.join(REPO, path)
        assert os.path.exists(full), f"{doc} cites {path}, which does not exist"
        if name:
            assert name in functions_in(full), f"{doc} cites {path}::{name}, which is missing"
