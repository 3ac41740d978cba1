"""Tests for the built-in corpus (stdlib docstrings) and the text-file loaders."""
import os

import pytest

from tinygrad_llm.data import corpus as corpus_mod
from tinygrad_llm.data import default_corpus, iter_text_files, load_text, load_texts
from tinygrad_llm.data.corpus import (clean_docstring, docstrings_of_modules,
                                      stdlib_source_files)


@pytest.fixture(scope="module")
def full_corpus(tmp_path_factory):
    """The full corpus, built once into a private cache directory."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("TINYGRAD_LLM_CACHE")
    os.environ["TINYGRAD_LLM_CACHE"] = str(cache)
    try:
        text = default_corpus()
        cached = default_corpus(1000)                  # served from the cache file now
        files = os.listdir(cache)
    finally:
        if old is None:
            del os.environ["TINYGRAD_LLM_CACHE"]
        else:
            os.environ["TINYGRAD_LLM_CACHE"] = old
    return text, cached, files


def test_full_corpus_size_cache_and_deduplication(full_corpus):
    text, cached, files = full_corpus
    assert 300_000 < len(text) < 4_000_000
    assert len(files) == 1 and files[0].startswith("default_corpus-")
    assert cached == text[:1000]
    paragraphs = [p for p in text.split("\n") if p]
    assert len(paragraphs) == len(set(paragraphs))           # deduplicated
    assert not any(p.lstrip().startswith(">>>") for p in paragraphs)   # no doctests


def test_partial_build_is_a_prefix_of_the_full_corpus(full_corpus):
    text, _, _ = full_corpus
    for n in (0, 1, 5000, 60_000):
        part = default_corpus(n, cache=False)
        assert len(part) == n and part == text[:n]


def test_corpus_is_english_prose():
    text = default_corpus(50_000, cache=False)
    words = text.split()
    common = {"the", "of", "a", "to", "is", "and", "return", "if"}
    assert sum(w.lower() in common for w in words) > 0.1 * len(words)
    assert sum(c.isascii() for c in text) > 0.99 * len(text)


def test_clean_docstring_rules():
    doc = ("Return the sum of the two numbers given.\n\n"
           ">>> add(1, 2)\n3\n\n"
           "Uses :func:`operator.add` and ``int``\nwhen it can, which is often.\n\n"
           "x = {'a': [1, 2]} # {}[]()\n\nshort")
    assert clean_docstring(doc) == ["Return the sum of the two numbers given.",
                                    "Uses operator.add and int when it can, which is often."]


def test_sources_and_fallback():
    files = stdlib_source_files()
    assert files == sorted(files, key=lambda p: os.path.relpath(p, os.path.dirname(files[0])))
    assert not any(f"{os.sep}test{os.sep}" in f or f"{os.sep}site-packages{os.sep}" in f
                   for f in files)
    docs = list(docstrings_of_modules(["json", "no_such_module_xyz"]))
    assert docs and "JSON" in docs[0]
    assert corpus_mod.cache_dir()


def test_load_text_file_and_recursive_folder(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("second", encoding="utf-8")
    (tmp_path / "1.txt").write_text("first\r\nline", encoding="utf-8")
    (tmp_path / "skip.md").write_text("markdown", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    assert [os.path.basename(p) for p in iter_text_files(tmp_path)] == ["1.txt", "2.txt"]
    assert load_text(tmp_path) == "first\r\nline\n\nsecond"
    assert load_text(tmp_path / "1.txt") == "first\r\nline"
    assert load_texts(tmp_path, suffixes=(".md",)) == ["markdown"]
    with pytest.raises(FileNotFoundError, match="nope"):
        load_text(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files ending in"):
        load_text(tmp_path / "empty")
