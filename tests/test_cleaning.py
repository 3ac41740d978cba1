"""Tests for tinygrad_llm.data.cleaning: each step alone, composed, and on arbitrary text."""
import functools
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_llm.data import ENGLISH_STOP_WORDS
from tinygrad_llm.data.cleaning import (Pipeline, clean_text, lowercase, make_cleaner,
                                        normalize_unicode, normalize_whitespace,
                                        remove_punctuation, remove_special_characters,
                                        remove_stopwords, stem, strip_html)


def test_strip_html_removes_tags_scripts_comments_and_decodes_entities():
    page = ("<!DOCTYPE html><html><head><title>T</title><style>p {color: red}</style></head>"
            "<body><!-- hidden --><p>Fish &amp; chips</p><p>caf&#233; <b>bo</b>ld</p>"
            "<script>alert('x')</script><br/>end</body></html>")
    text = strip_html(page)
    assert "<" not in text and "alert" not in text and "color" not in text
    assert "hidden" not in text and "T" not in text
    assert "Fish & chips" in text and "café bold" in text
    # Block tags separate words of adjacent paragraphs; inline tags do not split words.
    assert normalize_whitespace(text) == "Fish & chips café bold end"


def test_strip_html_keeps_plain_text_with_angle_brackets():
    assert strip_html("a < b and c > d") == "a < b and c > d"
    assert strip_html("no markup at all") == "no markup at all"
    assert strip_html("") == ""


def test_remove_punctuation_is_unicode_aware_and_keeps_requested_chars():
    assert remove_punctuation("Hello, world! «Oui» — 你好。") == "Hello  world   Oui    你好 "
    assert normalize_whitespace(remove_punctuation("well-known (sic)")) == "well known sic"
    assert remove_punctuation("don't stop", keep="'") == "don't stop"
    assert remove_punctuation("a.b", replacement="") == "ab"


def test_remove_special_characters_drops_symbols_and_controls_only():
    text = "price $5 + tax = 6€ 😀\x07 ok\u200b! é 中文 ½"
    out = remove_special_characters(text, replacement="")
    assert out == "price 5  tax  6  ok! é 中文 ½"
    assert remove_special_characters("tab\tand\nnewline") == "tab\tand\nnewline"


def test_lowercase_and_unicode_normalization():
    assert lowercase("ÉTÉ Straße") == "été straße"
    assert normalize_unicode("ﬁne Ａ") == "fine A"
    assert normalize_unicode("e\u0301", "NFC") == "é"
    with pytest.raises(ValueError, match="NFX"):
        normalize_unicode("x", "NFX")


def test_normalize_whitespace_both_modes():
    assert normalize_whitespace("  a \t b\n\n c\u3000d  ") == "a b c d"
    assert normalize_whitespace(" a  b \n\n\n\n c \r\n d ", keep_newlines=True) == \
        "a b\n\nc\nd"
    assert normalize_whitespace("") == ""


def test_remove_stopwords_on_strings_and_token_lists():
    assert remove_stopwords("The cat is on the mat") == "cat mat"
    assert remove_stopwords(["The", "cat", "is", "here"]) == ["cat"]
    assert remove_stopwords("a b c", stopwords={"b"}) == "a c"
    assert {"the", "and", "not", "don", "t"} <= ENGLISH_STOP_WORDS
    assert all(w == w.lower() and w.isalpha() for w in ENGLISH_STOP_WORDS)


def test_stem_uses_snowball():
    assert stem("running runs easily") == "run run easili"
    assert stem(["connected", "connections"]) == ["connect", "connect"]
    # "generously": Porter2 (english) and Porter 1980 (porter) disagree.
    assert stem("generously", "english") == "generous"
    assert stem("generously", "porter") == "gener"
    with pytest.raises(ValueError, match="klingon"):
        stem("x", "klingon")


def test_clean_text_default_and_options():
    raw = "<p>The CATS are   running!!</p> Visit https://x.io &amp; pay $5 😀"
    assert clean_text(raw) == "the cats are running visit https x io pay 5"
    assert clean_text(raw, remove_stopwords=True, stem=True) == "cat run visit https x io pay 5"
    assert clean_text(raw, lowercase=False, strip_html=False).startswith("p The CATS")
    assert clean_text("Don't STOP", remove_punctuation=False) == "don't stop"
    assert clean_text("", remove_stopwords=True, stem=True) == ""
    with pytest.raises(TypeError, match="str"):
        clean_text(None)


def test_pipeline_composes_in_order():
    upper_then_strip = Pipeline(str.upper, functools.partial(remove_punctuation, replacement=""))
    assert upper_then_strip("a.b") == "AB"
    assert upper_then_strip.map(["x!", "y?"]) == ["X", "Y"]
    assert len(upper_then_strip) == 2
    assert "remove_punctuation" in repr(upper_then_strip)
    assert Pipeline()("same") == "same"
    with pytest.raises(TypeError, match="step 1"):
        Pipeline(str.lower, "not callable")
    cleaner = make_cleaner(strip_html=False, stem=True)
    assert [getattr(s, "func", s).__name__ for s in cleaner.steps] == [
        "lowercase", "remove_punctuation", "remove_special_characters",
        "normalize_whitespace", "stem"]


@given(st.text())
def test_clean_text_output_is_normalized_and_idempotent(text):
    out = clean_text(text)
    assert out == out.strip() and "  " not in out
    assert not any(unicodedata.category(c)[0] in "PS" for c in out)
    assert not any(c.isspace() and c != " " for c in out)
    assert clean_text(out) == out


@given(st.text())
def test_each_step_accepts_any_text(text):
    for step in (strip_html, lowercase, remove_punctuation, remove_special_characters,
                 normalize_whitespace, remove_stopwords, stem):
        assert isinstance(step(text), str)
