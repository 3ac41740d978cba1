"""Tests for datasets, the DataLoader, pre-training data (skip-gram, MLM, NSP) and tasks."""
import datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_llm.data import (IGNORE_INDEX, ArrayDataset, ClassificationDataset, DataLoader,
                               LMWindowDataset, MaskedLMCollate, NegativeSampler,
                               NextSentenceDataset, PadCollate, Seq2SeqDataset,
                               SkipGramDataset, WordTokenizer, addition_pairs, copy_task,
                               date_pairs, default_collate, format_date, lm_windows,
                               make_nsp_pairs, mask_tokens, reverse_task, sentiment_task,
                               skipgram_pairs, sort_task, split_sentences, stratified_split,
                               subsample_frequent)

# ----- language-model windows -----------------------------------------------------------


@given(n=st.integers(2, 60), T=st.integers(1, 8), stride=st.integers(1, 9))
def test_lm_windows_are_shifted_by_one(n, T, stride):
    tokens = np.arange(100, 100 + n)
    if n < T + 1:
        with pytest.raises(ValueError, match=f"length {n}"):
            LMWindowDataset(tokens, T, stride)
        return
    ds = LMWindowDataset(tokens, T, stride)
    assert len(ds) == (n - T - 1) // stride + 1
    X, Y = lm_windows(tokens, T, stride)
    assert X.shape == Y.shape == (len(ds), T) and X.dtype == np.int64
    np.testing.assert_array_equal(X[:, 1:], Y[:, :-1])
    for i in range(len(ds)):
        x, y = ds[i]
        np.testing.assert_array_equal(x, X[i])
        np.testing.assert_array_equal(y, x + 1)


def test_lm_random_batch_and_loader():
    tokens = np.arange(50)
    ds = LMWindowDataset(tokens, 8)
    x, y = ds.random_batch(16, np.random.default_rng(0))
    assert x.shape == (16, 8)
    np.testing.assert_array_equal(y, x + 1)
    assert y.max() <= 49
    x2, _ = ds.random_batch(16, np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)
    batches = list(DataLoader(ds, batch_size=2))                      # sequential
    assert [b[0][:, 0].tolist() for b in batches] == [[0, 8], [16, 24], [32, 40]]
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]
    with pytest.raises(ValueError, match="1-D"):
        LMWindowDataset(np.zeros((2, 5), dtype=np.int64), 2)


# ----- DataLoader and collate -----------------------------------------------------------

def test_dataloader_shuffles_deterministically_and_covers_everything():
    ds = ArrayDataset(np.arange(10), np.arange(10) * 2)
    loader = DataLoader(ds, batch_size=3, shuffle=True, seed=42)
    assert len(loader) == 4
    epoch1 = [x.tolist() for x, _ in loader]
    epoch2 = [x.tolist() for x, _ in loader]
    assert sorted(sum(epoch1, [])) == list(range(10)) and epoch1 != epoch2
    again = DataLoader(ds, batch_size=3, shuffle=True, seed=42)
    assert [x.tolist() for x, _ in again] == epoch1
    assert [[len(x) for x, _ in DataLoader(ds, 3, drop_last=True)]] == [[3, 3, 3]]
    assert len(DataLoader(ds, 3, drop_last=True)) == 3
    gen = np.random.default_rng(1)
    a = DataLoader(ds, 4, shuffle=True, generator=gen).batch_indices()
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match=r"\[10, 3\]"):
        ArrayDataset(np.arange(10), np.arange(3))


def test_default_collate_and_pad_collate():
    batch = [{"x": np.array([1, 2]), "y": 3, "s": "a"}, {"x": np.array([4, 5]), "y": 6,
                                                         "s": "b"}]
    out = default_collate(batch)
    assert out["x"].tolist() == [[1, 2], [4, 5]] and out["y"].dtype == np.int64
    assert out["s"] == ["a", "b"]
    assert default_collate([(1, 2.5), (3, 4.5)])[1].tolist() == [2.5, 4.5]
    with pytest.raises(ValueError, match="PadCollate"):
        default_collate([np.array([1]), np.array([1, 2])])
    ragged = [{"input_ids": [5, 6, 7], "labels": [1, 2, 3], "k": 0},
              {"input_ids": [8], "labels": [4], "k": 1}]
    out = PadCollate(pad_value=0)(ragged)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["labels"].tolist() == [[1, 2, 3], [4, IGNORE_INDEX, IGNORE_INDEX]]
    assert out["k"].tolist() == [0, 1]
    fixed = PadCollate(0, max_length=5)(ragged)
    assert fixed["input_ids"].shape == (2, 5)


# ----- classification and splits ---------------------------------------------------------

@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=4), seed=st.integers(0, 9))
def test_stratified_split_keeps_class_shares(counts, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    tr, va, te = stratified_split(labels, 0.2, 0.1, seed=seed)
    everything = np.concatenate([tr, va, te])
    assert sorted(everything.tolist()) == list(range(len(labels)))
    for c, n in enumerate(counts):
        assert abs((labels[va] == c).sum() - 0.2 * n) < 1
        assert abs((labels[te] == c).sum() - 0.1 * n) < 1
    again = stratified_split(labels, 0.2, 0.1, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))


def test_classification_dataset_with_tokenizer():
    texts, labels = sentiment_task(60, seed=3)
    tok = WordTokenizer.from_corpus(texts, template="bert")
    ds = ClassificationDataset(texts, labels, tok, max_length=6)
    item = ds[0]
    assert item["input_ids"][0] == tok.cls_token_id and item["input_ids"][-1] == tok.sep_token_id
    assert max(len(ds[i]["input_ids"]) for i in range(len(ds))) <= 6
    train, val, test = ds.split(0.2, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (36, 12, 12)
    batch = next(iter(DataLoader(train, 8, shuffle=True, seed=0,
                                 collate_fn=PadCollate(tok.pad_token_id))))
    assert batch["input_ids"].shape[0] == 8 and batch["labels"].shape == (8,)
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        ClassificationDataset(["a", "b", "c"], [0, 1])


# ----- seq2seq ------------------------------------------------------------------------------

def test_seq2seq_teacher_forcing_layout():
    ds = Seq2SeqDataset([[7, 8, 9], [7]], [[4, 5], [6, 6, 6]], bos_token_id=1, eos_token_id=2)
    item = ds[0]
    assert item["decoder_input_ids"].tolist() == [1, 4, 5]
    assert item["labels"].tolist() == [4, 5, 2]
    batch = PadCollate(0)([ds[0], ds[1]])
    assert batch["input_ids"].tolist() == [[7, 8, 9], [7, 0, 0]]
    assert batch["labels"].tolist() == [[4, 5, 2, IGNORE_INDEX], [6, 6, 6, 2]]
    assert batch["decoder_attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    pairs = date_pairs(4, seed=0)
    from tinygrad_llm.data import CharTokenizer
    tok = CharTokenizer.from_corpus([s + t for s, t in pairs])
    ds = Seq2SeqDataset([s for s, _ in pairs], [t for _, t in pairs], tok)
    assert tok.decode(ds[0]["labels"], skip_special_tokens=True) == pairs[0][1]
    with pytest.raises(ValueError, match="bos and eos"):
        Seq2SeqDataset([[1]], [[2]])


# ----- skip-gram and negative sampling ---------------------------------------------------

def test_skipgram_pairs_are_all_window_neighbours():
    c, o = skipgram_pairs([10, 11, 12, 13], window=2)
    expected = [(10, 11), (10, 12), (11, 10), (11, 12), (11, 13), (12, 10), (12, 11),
                (12, 13), (13, 11), (13, 12)]
    assert list(zip(c.tolist(), o.tolist())) == expected
    rng = np.random.default_rng(0)
    cd, od = skipgram_pairs(np.arange(50), window=4, rng=rng, dynamic_window=True)
    full = set(zip(*skipgram_pairs(np.arange(50), window=4)))
    assert set(zip(cd.tolist(), od.tolist())) < full
    assert skipgram_pairs([], 2)[0].shape == (0,)


def test_negative_sampler_follows_unigram_to_the_three_quarters():
    counts = np.array([0, 1, 10, 100, 1000])
    sampler = NegativeSampler(counts, seed=0)
    draws = sampler.sample(200_000)
    freq = np.bincount(draws, minlength=5) / draws.size
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(sampler.probs, expected)
    assert freq[0] == 0
    np.testing.assert_allclose(freq, expected, atol=0.005)
    with pytest.raises(ValueError, match="non-negative"):
        NegativeSampler([-1, 2])


def test_skipgram_dataset_and_subsampling():
    ids = np.random.default_rng(0).integers(0, 20, size=300)
    ds = SkipGramDataset(ids, vocab_size=20, window=2, num_negatives=4, seed=1)
    assert len(ds) == 2 * (2 * 300 - 3)
    item = ds[5]
    assert item["negatives"].shape == (4,) and 0 <= item["negatives"].min()
    batch = next(iter(DataLoader(ds, 16)))
    assert batch["negatives"].shape == (16, 4) and batch["center"].shape == (16,)
    again = SkipGramDataset(ids, vocab_size=20, window=2, num_negatives=4, seed=1)
    np.testing.assert_array_equal(ds.negatives, again.negatives)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        SkipGramDataset([1, 7], vocab_size=5)
    counts = np.array([1000, 1])
    kept = subsample_frequent(np.array([0] * 1000 + [1]), counts, threshold=1e-3,
                              rng=np.random.default_rng(0))
    assert 1 in kept and (kept == 0).sum() < 100


# ----- masked LM and next sentence ----------------------------------------------------------

def test_mask_tokens_follows_bert_recipe():
    rng = np.random.default_rng(0)
    V, MASK, specials = 1000, 4, [0, 1, 2, 3, 4]
    ids = rng.integers(5, V, size=(200, 128))
    ids[:, 0], ids[:, -1], ids[:, -10:-1] = 2, 3, 0                   # [CLS] ... [SEP] + pad
    masked, labels = mask_tokens(ids, mask_token_id=MASK, vocab_size=V, special_ids=specials,
                                 rng=np.random.default_rng(1))
    chosen = labels != IGNORE_INDEX
    candidates = ~np.isin(ids, specials)
    assert not (chosen & ~candidates).any()
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(masked[~chosen], ids[~chosen])
    assert abs(chosen.sum() / candidates.sum() - 0.15) < 0.01
    as_mask = (masked == MASK) & chosen
    changed = (masked != ids) & chosen & ~as_mask
    same = (masked == ids) & chosen
    n = chosen.sum()
    assert abs(as_mask.sum() / n - 0.8) < 0.02
    assert abs(changed.sum() / n - 0.1) < 0.02 and abs(same.sum() / n - 0.1) < 0.02
    assert not np.isin(masked[changed], specials).any()
    again = mask_tokens(ids, mask_token_id=MASK, vocab_size=V, special_ids=specials,
                        rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again[0], masked)
    exact, ex_labels = mask_tokens(ids[:3], mask_token_id=MASK, vocab_size=V,
                                   special_ids=specials, rng=rng, exact_count=True)
    assert ((ex_labels != IGNORE_INDEX).sum(axis=1) == round(0.15 * 117)).all()


def test_masked_lm_collate_never_masks_padding_or_specials():
    tok = WordTokenizer.from_corpus("a b c d e f g h", template="bert")
    samples = [{"input_ids": tok.encode("a b c d e f g h", add_special_tokens=True)},
               {"input_ids": tok.encode("a", add_special_tokens=True)}]
    out = MaskedLMCollate(tok, mlm_probability=0.9, seed=0)(samples)
    assert set(out) == {"input_ids", "attention_mask", "labels"}
    special = np.isin(out["input_ids"], tok.all_special_ids) & (out["input_ids"] !=
                                                                  tok.mask_token_id)
    assert (out["labels"][special] == IGNORE_INDEX).all()
    assert (out["labels"][out["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_next_sentence_pairs():
    docs = [[f"d{d} s{i}" for i in range(30)] for d in range(6)]
    pairs = make_nsp_pairs(docs, rng=np.random.default_rng(0))
    assert len(pairs) == 6 * 29
    labels = np.array([lab for _, _, lab in pairs])
    assert 0.4 < labels.mean() < 0.6
    for a, b, lab in pairs:
        doc_a, doc_b = a.split()[0], b.split()[0]
        if lab == 0:
            assert doc_a == doc_b and int(b.split()[1][1:]) == int(a.split()[1][1:]) + 1
        else:
            assert doc_a != doc_b
    with pytest.raises(ValueError, match="at least 2"):
        make_nsp_pairs([["one", "two"]], rng=np.random.default_rng(0))
    tok = WordTokenizer.from_corpus(" ".join(s for d in docs for s in d), template="bert")
    ds = NextSentenceDataset(pairs[:4], tok, max_length=5)
    item = ds[0]
    assert item["input_ids"].tolist()[0] == tok.cls_token_id
    assert item["token_type_ids"].tolist() == [0, 0, 0, 1, 1]
    assert split_sentences("One here. Two there! 3 more? yes.") == ["One here.", "Two there!",
                                                                    "3 more? yes."]


# ----- generated tasks ----------------------------------------------------------------------

def test_sequence_tasks():
    src, tgt = copy_task(5, 7, 10, seed=0, low=3)
    np.testing.assert_array_equal(src, tgt)
    assert src.shape == (5, 7) and src.min() >= 3 and src.max() < 10
    src, tgt = reverse_task(5, 7, 10, seed=0)
    np.testing.assert_array_equal(tgt, src[:, ::-1])
    src, tgt = sort_task(5, 7, 10, seed=0, min_len=2)
    assert all(2 <= len(s) <= 7 and (t == np.sort(s)).all() for s, t in zip(src, tgt))
    a, _ = copy_task(5, 7, 10, seed=0, low=3)
    np.testing.assert_array_equal(a, copy_task(5, 7, 10, seed=0, low=3)[0])
    with pytest.raises(ValueError, match="vocab_size=3"):
        copy_task(1, 2, 3, low=3)


def test_date_pairs_are_correct_and_deterministic():
    pairs = date_pairs(50, seed=1, target_format="iso")
    assert pairs == date_pairs(50, seed=1, target_format="iso")
    for src, tgt in pairs:
        d = datetime.date.fromisoformat(tgt)
        assert src in {format_date(d, f) for f in ("long", "short", "dmy", "mdy", "day_month",
                                                   "weekday")}
    d = datetime.date(2024, 3, 5)
    assert format_date(d, "long") == "March 5, 2024" and format_date(d, "dmy") == "05/03/2024"
    assert format_date(d, "weekday") == "Tuesday, March 5, 2024"
    assert date_pairs(1, source_format="iso")[0][0].count("-") == 2
    with pytest.raises(ValueError, match="'julian'"):
        date_pairs(1, target_format="julian")


def test_sentiment_and_addition_tasks():
    texts, labels = sentiment_task(200, seed=0)
    assert labels.sum() == 100 and labels.dtype == np.int64
    assert (texts, labels.tolist()) == (sentiment_task(200, seed=0)[0],
                                        sentiment_task(200, seed=0)[1].tolist())
    assert any(" not " in t for t in texts) and any(", but " in t for t in texts)
    for src, tgt in addition_pairs(20, seed=0):
        a, b = src.split("+")
        assert int(a) + int(b) == int(tgt)
