"""Hypothesis on the text path: random Unicode through cleaning, every tokenizer, the dataset
windows, the loader and the file reader.

The text strategy mixes arbitrary code points (surrogates excepted) with the pieces that break
text code: combining marks, control and format characters, CRLF and lone CR, the neighbours of
the surrogate block (U+D7FF, U+E000) and of the ends of Unicode, the BOM, HTML fragments and
the tokenizers' own special-token strings; empty strings come up often. Where the input is
truly invalid (a lone surrogate for UTF-8, bytes that are not UTF-8, a text too short for a
window) the test asks for a clear error, never a crash or a silently wrong result.
Run under the project's hypothesis profile (tests/conftest.py: ``ci`` by default).
"""
import os
import re
import tempfile
import unicodedata

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_llm.data import (ByteLevelBPETokenizer, CharTokenizer, DataLoader,
                               LMWindowDataset, PadCollate, TextDecodeError, WordTokenizer,
                               clean_text, lm_windows, load_text, normalize_unicode,
                               normalize_whitespace, remove_punctuation,
                               remove_special_characters, strip_html)
from tinygrad_llm.data.datasets import ClassificationDataset

PIECES = [
    "\r\n", "\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u00a0", "\u3000",
    "\u0301", "\u0308", "\u20dd", "e\u0301", "\u200b", "\u200d", "\ufeff", "\u202e",
    "\ud7ff", "\ue000", "\ufffd", "\uffff", "\U00010000", "\U0001f600", "\U0010ffff",
    "\ufb01", "\uff21", "\u00df", "\u0130", "\u03a3", "\u0649", "\u4e2d\u6587",
    "<p>", "</p>", "<br/>", "<script>x</script>", "&amp;", "&#233;", "&#xD800;", "<!--", "<",
    "[CLS]", "[PAD]", "<eos>", "<bos>", "<|endoftext|>", "don't", "  ", "...",
]
any_char = st.characters(blacklist_categories=("Cs",))
texts = st.lists(st.one_of(st.text(any_char, max_size=6), st.sampled_from(PIECES)),
                 max_size=10).map("".join)
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


# ----- cleaning ---------------------------------------------------------------------------------

@given(texts)
def test_cleaning_steps_never_crash_and_keep_their_promises(text):
    ws = normalize_whitespace(text)
    assert ws == ws.strip() and "  " not in ws and normalize_whitespace(ws) == ws
    kept = normalize_whitespace(text, keep_newlines=True)
    assert "\r" not in kept and "\n\n\n" not in kept
    nfkc = normalize_unicode(text)
    assert normalize_unicode(nfkc) == nfkc
    no_punct = remove_punctuation(text)
    assert not any(unicodedata.category(c).startswith("P") for c in no_punct)
    no_special = remove_special_characters(text)
    assert not any(unicodedata.category(c).startswith("S") for c in no_special)
    assert not any(unicodedata.category(c) in ("Cc", "Cf") and not c.isspace()
                   for c in no_special)
    assert isinstance(strip_html(text), str)


@given(texts)
def test_clean_text_is_plain_words_and_idempotent(text):
    cleaned = clean_text(text)
    assert cleaned == cleaned.strip() and "  " not in cleaned
    assert clean_text(cleaned) == cleaned
    assert isinstance(clean_text(text, remove_stopwords=True, stem=True,
                                 normalize_unicode="NFKC"), str)


@given(texts)
def test_strip_html_leaves_text_without_markup_alone(text):
    assume("<" not in text and "&" not in text)
    assert strip_html(text) == text


@given(st.text(surrogates, min_size=1, max_size=3), texts)
def test_cleaning_accepts_lone_surrogates(bad, text):
    assert isinstance(clean_text(text + bad + text), str)   # str functions: no UTF-8 needed


# ----- tokenizers -------------------------------------------------------------------------------

@given(texts)
def test_char_tokenizer_round_trips_its_own_corpus(text):
    tok = CharTokenizer.from_corpus(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)
    with_template = tok.encode(text, add_special_tokens=True)
    assert with_template[0] == tok.bos_token_id and with_template[-1] == tok.eos_token_id


@given(texts, texts)
def test_char_tokenizer_maps_unknown_characters_to_unk(corpus, text):
    tok = CharTokenizer.from_corpus(corpus)
    ids = tok.encode(text)
    plain = tok._special_re.sub("", text)        # special-token strings encode as themselves
    if set(plain) <= set(corpus):
        assert tok.decode(ids) == text
    else:
        assert tok.unk_token_id in ids


@given(texts)
def test_char_tokenizer_handles_lone_surrogates_as_code_points(text):
    text = text + "\ud800x\udfff"
    tok = CharTokenizer.from_corpus(text)
    assert tok.decode(tok.encode(text)) == text


@given(texts)
def test_word_tokenizer_decodes_to_its_words(text):
    tok = WordTokenizer.from_corpus(text)
    specials = re.compile("|".join(map(re.escape, tok.all_special_tokens)))
    assume(not specials.search(text))
    words = tok.split_words(text)
    ids = tok.encode(text)
    assert tok.convert_ids_to_tokens(ids) == words
    assert tok.decode(ids) == " ".join(words)


BPE = ByteLevelBPETokenizer.train(["".join(PIECES) * 3, "the cat sat on the mat " * 20],
                                  vocab_size=320)


@given(texts)
def test_byte_level_bpe_round_trips_any_valid_text(text):
    ids = BPE.encode(text)
    assert BPE.decode(ids) == text
    assert all(0 <= i < BPE.vocab_size for i in ids)


@given(st.lists(texts, min_size=1, max_size=3))
def test_byte_level_bpe_trained_on_the_text_round_trips_it(corpus):
    tok = ByteLevelBPETokenizer.train(corpus, vocab_size=300, min_frequency=1)
    for text in corpus:
        assert tok.decode(tok.encode(text)) == text


@given(texts, surrogates, texts)
def test_byte_level_bpe_names_a_lone_surrogate(before, bad, after):
    text = before + bad + after
    with pytest.raises(UnicodeEncodeError, match=f"at index {len(before)} has no UTF-8 bytes"):
        BPE.encode(text)


@given(st.lists(texts, min_size=1, max_size=4))
def test_batch_encoding_pads_every_row(batch):
    tok = CharTokenizer.from_corpus(batch)
    enc = tok.encode_batch(batch, add_special_tokens=True)
    lengths = [len(tok.encode(t)) + 2 for t in batch]
    assert enc.input_ids.shape == (len(batch), max(lengths))
    np.testing.assert_array_equal(enc.attention_mask.sum(1), lengths)
    assert tok.decode_batch(enc.input_ids) == [tok.decode(tok.encode(t),
                                                          skip_special_tokens=True)
                                               for t in batch]


# ----- datasets and the loader ------------------------------------------------------------------

@given(texts, st.integers(1, 8), st.integers(1, 5))
def test_lm_windows_follow_the_token_stream_or_refuse_clearly(text, block, stride):
    ids = CharTokenizer.from_corpus(text).encode(text)
    if len(ids) < block + 1:
        with pytest.raises(ValueError, match="too short"):
            LMWindowDataset(ids, block, stride)
        return
    ds = LMWindowDataset(ids, block, stride)
    X, Y = lm_windows(ids, block, stride)
    assert len(ds) == len(X) == (len(ids) - block - 1) // stride + 1
    for i in range(len(ds)):
        x, y = ds[i]
        start = i * stride
        np.testing.assert_array_equal(x, ids[start:start + block])
        np.testing.assert_array_equal(y, ids[start + 1:start + block + 1])
        np.testing.assert_array_equal(X[i], x)


@given(texts, st.integers(1, 4), st.integers(1, 3), st.booleans(), st.integers(0, 3))
def test_loader_yields_every_window_once_per_epoch(text, block, batch_size, drop_last, seed):
    ids = CharTokenizer.from_corpus(text).encode(text)
    assume(len(ids) >= block + 1)
    ds = LMWindowDataset(ids, block, stride=1)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                        seed=seed)
    seen = []
    for x, y in loader:
        assert x.shape == y.shape and x.shape[1] == block and x.shape[0] <= batch_size
        assert x.dtype == np.int64
        seen.extend(map(tuple, x))
    expected = [tuple(ds[i][0]) for i in range(len(ds))]
    if drop_last:
        assert len(seen) == len(loader) * batch_size and set(seen) <= set(expected)
    else:
        assert sorted(seen) == sorted(expected)


@given(st.lists(texts, min_size=1, max_size=6), st.integers(1, 3))
def test_classification_batches_pad_random_texts(batch, batch_size):
    tok = CharTokenizer.from_corpus(batch)
    ds = ClassificationDataset(batch, [i % 2 for i in range(len(batch))], tok, max_length=12)
    rows = 0
    for out in DataLoader(ds, batch_size=batch_size, collate_fn=PadCollate(tok.pad_token_id)):
        assert out["input_ids"].shape == out["attention_mask"].shape
        assert out["input_ids"].shape[1] <= 12
        rows += len(out["labels"])
    assert rows == len(batch)


# ----- reading files ----------------------------------------------------------------------------

@given(texts)
def test_load_text_returns_the_file_exactly(text):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.txt")
        with open(path, "wb") as f:
            f.write(text.encode("utf-8"))
        assert load_text(path) == text          # CRLF, BOM and all


@given(st.binary(max_size=64))
def test_load_text_of_random_bytes_decodes_or_names_the_offset(data):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "b.txt")
        with open(path, "wb") as f:
            f.write(data)
        try:
            expected = data.decode("utf-8")
        except UnicodeDecodeError as e:
            with pytest.raises(TextDecodeError) as err:
                load_text(path)
            assert err.value.path == path and err.value.start == e.start
            assert err.value.line == data[:e.start].count(b"\n") + 1
            assert f"{path}: not valid utf-8 text at byte offset {e.start}" in str(err.value)
            assert load_text(path, encoding="latin-1") == data.decode("latin-1")
        else:
            assert load_text(path) == expected
