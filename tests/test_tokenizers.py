"""Tests for the tokenizers: char, word, byte-level BPE (against HF tokenizers/transformers)."""
import json
import os
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_llm.data import (ENDOFTEXT, ByteLevelBPETokenizer, CharTokenizer, WordTokenizer,
                               bytes_to_unicode, default_corpus, gpt2_pretokenize,
                               load_tokenizer, read_merges)
from tinygrad_llm.data.bytelevel import bytes_to_token_str, token_str_to_bytes

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<bos>", "<eos>", ENDOFTEXT]
VARIED = [
    "", " ", "  ", "\n", "\n\n\n", "Hello world", "Hello  world", " leading and trailing  ",
    "It's, they're, we've, I'm, you'll, he'd, IT'S", "x = [1, 2, 3]  # comment\n\tpass",
    "def f(a, b):\n    return a ** 2 + b\n", "12345 3.14159 1,000,000 0xFF 1e-9",
    "中文字符测试，标点。", "emoji 😀🎉👍🏽 family 👨‍👩‍👧", "café naïve résumé Ångström",
    "mixed\r\nline\rends\u2028sep", "tabs\t\tand\u00a0nbsp\u3000ideographic", "²½Ⅷ٣",
    "a<|endoftext|>b", "<|endoftext|><|endoftext|>", "ends with spaces   ", "!!!???...",
    "e\u0301 combining", "\x00\x01\x1c control", "https://example.com/a?b=c&d=e",
]
# Unassigned code points (Cn) are left out: HF's regex engine knows a newer Unicode version
# than Python 3.11's unicodedata (see tinygrad_llm/data/bytelevel.py).
TEXT = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=60)


@pytest.fixture(scope="module")
def corpus():
    return default_corpus(200_000)


@pytest.fixture(scope="module")
def bpe(corpus):
    return ByteLevelBPETokenizer.train(corpus, vocab_size=1000)


@pytest.fixture(scope="module")
def bpe_files(bpe, tmp_path_factory):
    """Our vocab.json + merges.txt alone in a folder (no tokenizer_config.json for HF)."""
    saved = tmp_path_factory.mktemp("ours")
    bpe.save(saved)
    plain = tmp_path_factory.mktemp("plain")
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(saved / name, plain / name)
    return plain


@pytest.fixture(scope="module")
def hf_bytelevel(bpe_files):
    impl = pytest.importorskip("tokenizers.implementations")
    tok = impl.ByteLevelBPETokenizer(str(bpe_files / "vocab.json"),
                                     str(bpe_files / "merges.txt"))
    tok.add_special_tokens(SPECIALS)
    return tok


@pytest.fixture(scope="module")
def hf_gpt2(bpe_files):
    transformers = pytest.importorskip("transformers")
    return transformers.GPT2TokenizerFast.from_pretrained(str(bpe_files))


# ----- byte-level building blocks ------------------------------------------------------

def test_bytes_to_unicode_is_gpt2s_map():
    m = bytes_to_unicode()
    assert len(m) == 256 and len(set(m.values())) == 256
    assert m[ord("!")] == "!" and m[ord(" ")] == "Ġ" and m[ord("\n")] == "Ċ"
    assert list(m)[:3] == [33, 34, 35] and list(m)[188] == 0    # GPT-2's id order
    assert all(c.isprintable() and not c.isspace() for c in m.values())
    data = bytes(range(256))
    assert token_str_to_bytes(bytes_to_token_str(data)) == data
    with pytest.raises(ValueError, match="U\\+4E2D"):
        token_str_to_bytes("中")


def test_gpt2_pretokenize_examples():
    assert gpt2_pretokenize("Hello  world's 42!") == ["Hello", " ", " world", "'s", " 42", "!"]
    assert gpt2_pretokenize("a\n\n  b") == ["a", "\n\n ", " b"]
    assert gpt2_pretokenize("x²") == ["x", "²"]          # ² is a number (No), not a letter
    assert gpt2_pretokenize("a\x1cb") == ["a", "\x1c", "b"]  # U+001C is not White_Space
    assert gpt2_pretokenize("") == []


@pytest.mark.oracle
@given(TEXT)
def test_pretokenize_covers_text_and_matches_hf(text):
    assert "".join(gpt2_pretokenize(text)) == text
    pre = pytest.importorskip("tokenizers.pre_tokenizers")
    hf = pre.ByteLevel(add_prefix_space=False, use_regex=True).pre_tokenize_str(text)
    assert [bytes_to_token_str(p.encode()) for p in gpt2_pretokenize(text)] == \
        [p for p, _ in hf]


# ----- byte-level BPE ------------------------------------------------------------------

def test_bpe_vocab_layout(bpe):
    assert bpe.vocab_size == 1000
    assert [bpe.id_to_token(i) for i in range(3)] == ["!", '"', "#"]
    assert bpe.id_to_token(999) == ENDOFTEXT and bpe.id_to_token(992) == "[PAD]"
    assert bpe.pad_token_id == 992 and bpe.mask_token_id == 996
    assert len(bpe.merges) == 1000 - 256 - len(SPECIALS)


@pytest.mark.oracle
def test_bpe_merges_equal_hf_trainer(corpus, bpe):
    impl = pytest.importorskip("tokenizers.implementations")
    hf = impl.ByteLevelBPETokenizer()
    hf.train_from_iterator([corpus], vocab_size=1000, min_frequency=2,
                           special_tokens=SPECIALS, show_progress=False)
    model = json.loads(hf._tokenizer.to_str())["model"]
    hf_merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                 for m in model["merges"]]
    assert hf_merges == bpe.merges


def test_bpe_roundtrip_and_specials(bpe):
    for text in VARIED:
        ids = bpe.encode(text)
        assert bpe.decode(ids) == text
    assert bpe.encode("") == []
    ids = bpe.encode("a<|endoftext|>b")
    assert ids.count(bpe.vocab[ENDOFTEXT]) == 1 and len(ids) == 3
    assert bpe.decode(ids, skip_special_tokens=True) == "ab"
    assert bpe.encode("x", add_special_tokens=True) == bpe.encode("x")   # GPT-2: nothing added
    assert len(bpe.encode("Hello world, the function returns")) < 20      # merges happened


@given(st.text())
def test_bpe_decode_encode_is_identity(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@pytest.mark.oracle
def test_bpe_matches_hf_tokenizers(bpe, hf_bytelevel, corpus):
    for text in VARIED + [corpus[:5000]]:
        assert bpe.encode(text) == hf_bytelevel.encode(text).ids, text


@pytest.mark.oracle
def test_bpe_matches_gpt2_tokenizer_fast(bpe, hf_gpt2):
    for text in VARIED:
        expected = hf_gpt2(text.replace("[PAD]", ""))["input_ids"]
        assert bpe.encode(text.replace("[PAD]", "")) == expected, text


@pytest.mark.oracle
@given(TEXT)
def test_bpe_matches_hf_on_arbitrary_text(bpe, hf_bytelevel, hf_gpt2, text):
    ours = bpe.encode(text)
    assert ours == hf_bytelevel.encode(text).ids
    if not any(s in text for s in SPECIALS):
        assert ours == hf_gpt2(text)["input_ids"]


def test_bpe_save_load_and_gpt2_files(bpe, tmp_path):
    paths = bpe.save(tmp_path / "tok")
    assert [os.path.basename(p) for p in paths] == ["vocab.json", "merges.txt",
                                                    "tokenizer_config.json"]
    assert open(paths[1], encoding="utf-8").readline() == "#version: 0.2\n"
    assert read_merges(paths[1]) == bpe.merges
    again = load_tokenizer(tmp_path / "tok")
    assert again.get_vocab() == bpe.get_vocab() and again.merges == bpe.merges
    assert load_tokenizer(paths[2]).merges == bpe.merges         # the config file works too
    assert again.special_tokens == bpe.special_tokens
    os.remove(paths[2])                           # plain GPT-2 files: <|endoftext|> roles
    plain = ByteLevelBPETokenizer.load(tmp_path / "tok")
    assert plain.eos_token_id == plain.bos_token_id == bpe.vocab[ENDOFTEXT]
    assert plain.pad_token_id is None
    assert plain.encode("some text here") == bpe.encode("some text here")


def test_bpe_rejects_broken_files(tmp_path):
    base = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    with pytest.raises(ValueError, match="not in the vocab"):
        ByteLevelBPETokenizer(base, [("a", "b")])
    with pytest.raises(ValueError, match="256 byte tokens"):
        ByteLevelBPETokenizer({"a": 0}, [])
    bad = tmp_path / "merges.txt"
    bad.write_text("#version: 0.2\na b c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="merges.txt:2"):
        read_merges(bad)
    with pytest.raises(ValueError, match="vocab_size=10"):
        ByteLevelBPETokenizer.train("abc", vocab_size=10)


def test_bpe_bad_ids_raise_index_error(bpe):
    with pytest.raises(IndexError, match="1000"):
        bpe.decode([5, 1000])
    with pytest.raises(IndexError, match="-1"):
        bpe.decode([-1])


# ----- char and word tokenizers --------------------------------------------------------

def test_char_tokenizer_basics(tmp_path):
    tok = CharTokenizer.from_corpus(["hello", "world"])
    assert tok.vocab_size == 7 + 7
    assert [tok.id_to_token(i) for i in range(7)] == SPECIALS[:7]
    assert tok.chars == sorted(set("helloworld"))
    assert tok.decode(tok.encode("hello")) == "hello"
    assert tok.encode("hez") == [tok.vocab["h"], tok.vocab["e"], tok.unk_token_id]
    assert tok.encode("h[MASK]") == [tok.vocab["h"], tok.mask_token_id]
    assert tok.encode("ho", add_special_tokens=True) == [5, tok.vocab["h"], tok.vocab["o"], 6]
    assert tok.decode(tok.encode("ho", add_special_tokens=True), skip_special_tokens=True) == "ho"
    tok.save(tmp_path / "c.json")
    again = load_tokenizer(tmp_path / "c.json")
    assert isinstance(again, CharTokenizer) and again.get_vocab() == tok.get_vocab()


def test_char_tokenizer_min_freq_and_max_size():
    tok = CharTokenizer.from_corpus("aaabbc", min_freq=2)
    assert tok.chars == ["a", "b"]
    tok = CharTokenizer.from_corpus("aaabbcd", max_size=7 + 2)
    assert tok.chars == ["a", "b"]
    with pytest.raises(ValueError, match="max_size=3"):
        CharTokenizer.from_corpus("abc", max_size=3)
    no_unk = CharTokenizer("ab", special_tokens={"pad_token": "[PAD]"})
    with pytest.raises(ValueError, match="'z'"):
        no_unk.encode("az")


@given(st.text())
def test_char_roundtrip_on_known_characters(text):
    tok = CharTokenizer.from_corpus(text)
    if not any(s in text for s in SPECIALS):
        assert tok.decode(tok.encode(text)) == text


def test_word_tokenizer_vocab_unknowns_and_files(tmp_path):
    texts = ["The cat sat.", "The dog sat!", "the cat ran"]
    tok = WordTokenizer.from_corpus(texts, min_freq=2)
    assert tok.words == ["the", "cat", "sat"]               # by frequency, then alphabet
    assert tok.encode("The bird sat") == [tok.vocab["the"], tok.unk_token_id, tok.vocab["sat"]]
    assert tok.decode(tok.encode("the cat [SEP] sat")) == "the cat [SEP] sat"
    assert WordTokenizer.from_corpus(texts, max_size=9).words == ["the", "cat"]
    cased = WordTokenizer.from_corpus(texts, lowercase=False)
    assert "The" in cased.vocab and "the" in cased.vocab
    tok.save(tmp_path / "w.json")
    again = WordTokenizer.load(tmp_path / "w.json")
    assert again.get_vocab() == tok.get_vocab() and again.lowercase
    with pytest.raises(ValueError, match="'word' tokenizer, not 'char'"):
        CharTokenizer.load(tmp_path / "w.json")


# ----- batch encoding ------------------------------------------------------------------

@pytest.fixture
def words():
    return WordTokenizer.from_corpus("a b c d e f g", template="bert")


def test_batch_padding_and_masks(words):
    enc = words(["a b c", "d"], add_special_tokens=True)
    assert enc.input_ids.dtype == np.int64 and enc.attention_mask.dtype == np.int64
    a, b, c, d = (words.vocab[x] for x in "abcd")
    assert enc.input_ids.tolist() == [[2, a, b, c, 3], [2, d, 3, 0, 0]]
    assert enc.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    left = words(["a b", "c"], padding_side="left")
    assert left.input_ids.tolist() == [[a, b], [0, c]]
    assert left.attention_mask.tolist() == [[1, 1], [0, 1]]
    fixed = words(["a"], padding="max_length", max_length=4)
    assert fixed.input_ids.tolist() == [[a, 0, 0, 0]]
    assert words("a b").input_ids.shape == (1, 2)
    assert words([], padding=True).input_ids.shape == (0, 0)


def test_batch_truncation_keeps_template_tokens(words):
    enc = words(["a b c d e", "a"], truncation=True, max_length=4, add_special_tokens=True)
    assert enc.input_ids[0].tolist() == [2, words.vocab["a"], words.vocab["b"], 3]
    pairs = words(["a b c d", "e"], ["f g", "a b c d e f"], truncation=True, max_length=7,
                  add_special_tokens=True, return_token_type_ids=True)
    assert pairs.input_ids.shape == (2, 7)
    assert pairs.token_type_ids[0].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert pairs.input_ids[1].tolist()[:3] == [2, words.vocab["e"], 3]


def test_batch_errors_name_the_problem(words):
    with pytest.raises(ValueError, match=r"\[3, 1\]"):
        words(["a b c", "d"], padding=False)
    with pytest.raises(ValueError, match="need max_length"):
        words(["a"], truncation=True)
    with pytest.raises(ValueError, match="length 3 exceeds max_length=2"):
        words(["a b c"], padding="max_length", max_length=2)
    with pytest.raises(ValueError, match="2 texts but 1 text_pairs"):
        words(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="padding must be"):
        words(["a"], padding="sideways")
    with pytest.raises(TypeError, match="str"):
        words.encode(3)
