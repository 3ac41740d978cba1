"""The import graph: imports point down the layers drawn in the README, and speed stays in kernels/.

The README's layer diagram (between the ``<!-- layers -->`` markers) is the specification: this
test reads it, walks every import statement of the package with ``ast`` (module level and
inside functions) and fails on

- an import from a module of one layer into a module of a higher layer;
- an import cycle, except the one the README documents (the core: a Tensor's methods call the
  ops, and the ops build Tensors through autograd);
- a file outside kernels/ that imports numba or a private ``kernels._*`` module (speed lives in
  kernels/, behind public functions), and a file other than backend.py that imports CuPy;
- a module that no layer of the diagram names.
"""
import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = (("tinygrad_llm", "tinygrad_llm"), ("kernels", "tinygrad_llm.kernels"))


def _modules():
    """{dotted module name: path} for every .py file of the package and of kernels/."""
    mods = {}
    for folder, package in PACKAGES:
        top = os.path.join(ROOT, folder)
        for dirpath, _, files in os.walk(top):
            for f in files:
                if not f.endswith(".py"):
                    continue
                parts = os.path.relpath(os.path.join(dirpath, f), top)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                mods[".".join([package] + parts)] = os.path.join(dirpath, f)
    return mods


def _imports(name, path, mods):
    """(target module, the statement's text) for every internal import in the file; an import
    of a package's name resolves to the submodule when there is one."""
    is_package = path.endswith("__init__.py")
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module
                       for a in node.names]
        else:
            continue
        for t in targets:
            found.append((t, ast.unparse(node)))
    return found


def _resolve(target, mods):
    while target not in mods and "." in target:
        target = target.rsplit(".", 1)[0]
    return target if target in mods else None


def _readme_layers():
    """[(layer number, name, [module patterns])] from the README's diagram."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    block = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", text, re.S)
    assert block, "README.md has no <!-- layers --> diagram"
    layers = []
    for line in block.group(1).splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)\s{2,}(.+)$", line)
        if m:
            layers.append((int(m.group(1)), m.group(2), m.group(3).split()))
    assert layers, "the README's layer diagram is empty"
    return layers


def _layer_of(module, layers):
    """The layer whose pattern names this module most specifically (longest match)."""
    short = module[len("tinygrad_llm."):] if module != "tinygrad_llm" else "__init__"
    best = None
    for number, _, patterns in layers:
        for p in patterns:
            if short == p or short.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (number, len(p))
    return None if best is None else best[0]


def _graph():
    mods = _modules()
    edges = {m: {} for m in mods}
    for m, path in mods.items():
        for target, text in _imports(m, path, mods):
            if not target.startswith("tinygrad_llm"):
                continue
            t = _resolve(target, mods)
            if t is not None and t != m:
                edges[m][t] = text
    return mods, edges


def _cycles(edges):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(comp)
    return out


def test_every_module_has_a_layer_in_the_readme():
    layers = _readme_layers()
    mods, _ = _graph()
    missing = sorted(m for m in mods if _layer_of(m, layers) is None)
    assert not missing, f"modules that the README's layer diagram does not name: {missing}"


def test_imports_point_down_the_layers():
    layers = _readme_layers()
    _, edges = _graph()
    upward = []
    for m, targets in edges.items():
        if m == "tinygrad_llm":           # the package's __init__ gathers the public API
            continue
        for t, text in targets.items():
            lm, lt = _layer_of(m, layers), _layer_of(t, layers)
            if lm is not None and lt is not None and lt > lm:
                upward.append(f"{m} (layer {lm}) imports {t} (layer {lt}): {text}")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(sorted(upward))


def test_one_documented_import_cycle_at_most():
    layers = _readme_layers()
    _, edges = _graph()
    core = {n for n, name, _ in layers if name == "core"}
    assert len(core) == 1, "the README's diagram must have exactly one layer named core"
    bad = []
    for comp in _cycles(edges):
        if any(_layer_of(m, layers) not in core for m in comp):
            bad.append(sorted(comp))
    assert not bad, f"import cycles outside the core: {bad}"


def test_speed_code_stays_in_kernels():
    mods, _ = _graph()
    offenders = []
    for m, path in mods.items():
        if m.startswith("tinygrad_llm.kernels"):
            continue
        for target, text in _imports(m, path, mods):
            private_kernel = re.match(r"tinygrad_llm\.kernels\._", target)
            if target.split(".")[0] in ("numba", "llvmlite") or private_kernel:
                offenders.append(f"{m}: {text}")
    assert not offenders, ("outside kernels/, import only public kernel modules and no "
                           "numba:\n" + "\n".join(offenders))


def test_backend_is_the_only_cupy_import():
    mods, _ = _graph()
    offenders = [f"{m}: {text}" for m, path in mods.items() if m != "tinygrad_llm.backend"
                 for target, text in _imports(m, path, mods)
                 if target.split(".")[0] in ("cupy", "cupyx")]
    assert not offenders, "only backend.py imports CuPy:\n" + "\n".join(offenders)


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The detectors themselves: an upward import, a cycle and a private kernel import in a
    made-up package are all found."""
    edges = {"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}, "d": {"a": ""}}
    assert _cycles(edges) == [{"a", "b", "c"}]
    layers = [(0, "bottom", ["x"]), (1, "core", ["ops", "tensor"]), (2, "top", ["models"])]
    assert _layer_of("tinygrad_llm.ops.softmax", layers) == 1
    assert _layer_of("tinygrad_llm.models.gpt", layers) == 2
    assert _layer_of("tinygrad_llm.nowhere", layers) is None
    pkg = tmp_path / "tinygrad_llm"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "m.py").write_text("def f():\n    from .kernels._blas import matmul\n"
                              "import numba\n")
    (pkg / "kernels").mkdir()
    (pkg / "kernels" / "__init__.py").write_text("")
    (pkg / "kernels" / "_blas.py").write_text("")
    mods = {"tinygrad_llm": str(pkg / "__init__.py"), "tinygrad_llm.m": str(pkg / "m.py"),
            "tinygrad_llm.kernels": str(pkg / "kernels" / "__init__.py"),
            "tinygrad_llm.kernels._blas": str(pkg / "kernels" / "_blas.py")}
    targets = [t for t, _ in _imports("tinygrad_llm.m", mods["tinygrad_llm.m"], mods)]
    assert "tinygrad_llm.kernels._blas" in targets and "numba" in targets


if __name__ == "__main__":  # print the graph by layer: python tests/test_imports.py
    layers = _readme_layers()
    _, edges = _graph()
    for m in sorted(edges, key=lambda m: (_layer_of(m, layers) or -1, m)):
        print(_layer_of(m, layers), m, "->", " ".join(sorted(edges[m])))
    sys.exit(0)
