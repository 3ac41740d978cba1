"""Text without downloads: the built-in default corpus and loaders for your own files.

The default corpus is English prose that every Python installation carries: the docstrings
of the standard library. It is built at run time by

1. walking the stdlib source folder (``sysconfig.get_paths()["stdlib"]``) in sorted order,
   skipping test suites and third-party ``site-packages``;
2. parsing each ``.py`` file with ``ast`` (never importing it) and taking the docstrings of
   the module, its classes and functions, in source order;
3. cleaning each docstring: paragraphs holding doctest prompts (``>>>``), shell prompts or
   mostly code are dropped, reStructuredText markup (``:func:`x```, ````x````) is reduced to
   its text, hard-wrapped lines are joined;
4. dropping paragraphs seen before (many docstrings repeat), and joining the paragraphs of a
   docstring with ``\\n`` and docstrings with ``\\n\\n``.

The result (about 1 MB on Python 3.11) is identical across runs on the same Python version.
It is cached in ``$TINYGRAD_LLM_CACHE`` or ``$XDG_CACHE_HOME/tinygrad_llm`` (default
``~/.cache/tinygrad_llm``); ``default_corpus(max_chars=n)`` without a cache parses only as
many files as it needs and returns exactly the first n characters of the full corpus.
Where no stdlib sources exist (frozen or embedded Pythons), the docstrings of a fixed list of
imported modules are used instead (``inspect.getdoc``).
"""
import ast
import codecs
import hashlib
import inspect
import os
import re
import sys
import sysconfig

CORPUS_VERSION = 1
_SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "__pycache__", "idle_test",
              "turtledemo"}
_FALLBACK_MODULES = (
    "abc argparse ast asyncio base64 bisect calendar collections contextlib copy csv "
    "dataclasses datetime decimal difflib email enum fractions functools glob gzip hashlib "
    "heapq html http inspect io itertools json logging math operator os pathlib pprint "
    "random re shutil socket sqlite3 statistics string struct subprocess tarfile tempfile "
    "textwrap threading time typing unittest urllib uuid warnings weakref xml zipfile"
).split()

_ROLE = re.compile(r":[a-zA-Z:]+:`~?([^`]+)`")
_DOUBLE_BACKTICK = re.compile(r"``([^`]+)``")
_SPACES = re.compile(r"\s+")


def clean_docstring(doc):
    """Prose paragraphs of one docstring (see the module docstring for the rules)."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", doc):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        stripped = [line.strip() for line in lines]
        if any(s.startswith((">>>", "...", "$ ", "%")) for s in stripped):
            continue
        text = " ".join(stripped)
        text = _DOUBLE_BACKTICK.sub(r"\1", _ROLE.sub(r"\1", text))
        text = _SPACES.sub(" ", text).strip()
        letters = sum(c.isalpha() or c == " " for c in text)
        # Code and tables are mostly symbols; prose is mostly letters and spaces.
        if len(text) < 20 or letters < 0.8 * len(text):
            continue
        paragraphs.append(text)
    return paragraphs


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _definitions(statements):
    """Classes and functions among ``statements`` and nested in their bodies (pre-order).

    Only statement lists are walked (bodies, else/finally blocks, except handlers, match
    cases): definitions cannot hide inside expressions, and skipping the expression nodes
    makes this several times faster than ``ast.walk``.
    """
    for node in statements:
        if isinstance(node, _DEFS):
            yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            child = getattr(node, name, None)
            if isinstance(child, list):
                yield from _definitions(child)


def _docstrings_of_source(source):
    """Docstrings of the module, classes and functions of one source file, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    nodes = [tree] + sorted(_definitions(tree.body), key=lambda n: (n.lineno, n.col_offset))
    docs = []
    for node in nodes:
        doc = ast.get_docstring(node, clean=True)
        if doc:
            docs.append(doc)
    return docs


def stdlib_source_files(root=None):
    """Sorted paths of the stdlib ``.py`` files used for the corpus (tests excluded)."""
    root = root or sysconfig.get_paths()["stdlib"]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("test_"):
                files.append(os.path.join(dirpath, name))
    files.sort(key=lambda p: os.path.relpath(p, root).replace(os.sep, "/"))
    return files


def _iter_raw_docstrings():
    files = stdlib_source_files()
    if files:
        for path in files:
            try:
                with open(path, encoding="utf-8") as f:
                    source = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            yield from _docstrings_of_source(source)
    else:
        yield from docstrings_of_modules(_FALLBACK_MODULES)


def docstrings_of_modules(names):
    """Docstrings of the named modules and their public members (the fallback source)."""
    import importlib
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:           # a module missing from this build is simply skipped
            continue
        docs = [inspect.getdoc(module)]
        for attr in sorted(vars(module)):
            obj = getattr(module, attr)
            if not attr.startswith("_") and getattr(obj, "__module__", None) == name:
                docs.append(inspect.getdoc(obj))
        yield from (d for d in docs if d)


def iter_corpus_documents(max_chars=None):
    """The cleaned, deduplicated documents of the default corpus, in order; stops once
    ``max_chars`` characters (separators included) have been produced."""
    seen = set()
    total = 0
    for doc in _iter_raw_docstrings():
        paragraphs = []
        for p in clean_docstring(doc):
            if p not in seen:
                seen.add(p)
                paragraphs.append(p)
        if paragraphs:
            text = "\n".join(paragraphs)
            yield text
            total += len(text) + 2
            if max_chars is not None and total >= max_chars:
                return


def cache_dir():
    """Where the corpus cache lives (created on demand)."""
    base = os.environ.get("TINYGRAD_LLM_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                               ".cache")
        base = os.path.join(xdg, "tinygrad_llm")
    return base


def _cache_path():
    key = f"{sys.version}|{sysconfig.get_paths()['stdlib']}|{CORPUS_VERSION}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return os.path.join(cache_dir(), f"default_corpus-{digest}.txt")


def default_corpus(max_chars=None, *, cache=True):
    """The built-in English corpus (stdlib docstrings), or its first ``max_chars`` characters.

    With ``cache`` the full corpus is read from / written to the cache file (an unwritable
    cache directory is silently skipped). Deterministic for a given Python version.
    """
    if max_chars is not None and max_chars < 0:
        raise ValueError(f"max_chars must be >= 0, got {max_chars}")
    path = _cache_path()
    if cache and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return text if max_chars is None else text[:max_chars]
    docs = list(iter_corpus_documents(max_chars))
    text = "\n\n".join(docs)
    complete = max_chars is None or len(text) < max_chars
    if cache and complete:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError:         # a read-only home is fine: the corpus is just rebuilt
            pass
    return text if max_chars is None else text[:max_chars]


def corpus_documents(max_chars=None):
    """The default corpus split into its documents (one docstring each)."""
    return [d for d in default_corpus(max_chars).split("\n\n") if d]


# ----- your own text --------------------------------------------------------------------

def iter_text_files(path, suffixes=(".txt",)):
    """Sorted paths of the files under ``path`` (recursively) whose name ends in a suffix;
    a file path is returned as the only element."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such file or directory: {path!r}")
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        found.extend(os.path.join(dirpath, n) for n in sorted(filenames)
                     if n.endswith(tuple(suffixes)) and not n.startswith("."))
    return sorted(found)


class TextDecodeError(UnicodeDecodeError):
    """A file that is not valid text in the given encoding. Besides UnicodeDecodeError's
    ``encoding``, ``start``/``end`` (byte offsets in the file) and ``reason``, it has ``path``
    and ``line`` (1-based), and its message names all of them."""

    def __init__(self, path, encoding, data, start, end, reason):
        super().__init__(codecs.lookup(encoding).name, data, start, end, reason)
        self.path = os.fspath(path)
        self.line = data.count(b"\n", 0, start) + 1

    def bad_bytes(self):
        """The offending bytes, e.g. ``byte 0xff`` or ``bytes 0xe2 0x82``."""
        bad = self.object[self.start:max(self.end, self.start + 1)][:8]
        return ("byte " if len(bad) == 1 else "bytes ") + " ".join(f"0x{b:02x}" for b in bad)

    def __str__(self):
        return (f"{self.path}: not valid {self.encoding} text at byte offset {self.start} "
                f"(line {self.line}, {self.bad_bytes()}: {self.reason}); pass the file's "
                f"encoding (encoding=, the CLI's --encoding), e.g. latin-1")


def read_text_file(path, encoding="utf-8", errors="strict"):
    """The text of one file, line endings untouched (like ``newline=""``). A file that does
    not decode raises :class:`TextDecodeError` naming the file, byte offset and line."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as e:
        # decoding the whole file at once makes e.start an offset in the file, not in a chunk
        raise TextDecodeError(path, encoding, data, e.start, e.end, e.reason) from None


def load_texts(path, suffixes=(".txt",), encoding="utf-8", errors="strict"):
    """The contents of each text file under ``path`` (see :func:`iter_text_files`)."""
    return [read_text_file(p, encoding, errors) for p in iter_text_files(path, suffixes)]


def load_text(path, suffixes=(".txt",), encoding="utf-8", separator="\n\n", errors="strict"):
    """One string from a text file, or from every matching file of a folder (recursively,
    in sorted path order) joined by ``separator``. A folder without such files is an error."""
    texts = load_texts(path, suffixes, encoding, errors)
    if not texts:
        raise ValueError(f"no files ending in {tuple(suffixes)} under {os.fspath(path)!r}")
    return separator.join(texts)
