"""Tests for tinygrad_llm.metrics: hand-computed cases and sacrebleu / rouge-score oracles."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_llm.metrics import (UndefinedMetricWarning, accuracy, analogy, bleu,
                                  confusion_matrix, corpus_bleu, cosine_similarity, f1_score,
                                  fbeta_score, most_similar, nearest_neighbors, perplexity,
                                  perplexity_from_log_probs, perplexity_from_logits, precision,
                                  precision_recall_fscore_support, recall, rouge, rouge_l,
                                  rouge_n, rouge_scores, rouge_tokenize, sentence_bleu,
                                  tokenize_13a)

# ----- classification -----------------------------------------------------------------------

Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
Y_PRED = [0, 1, 2, 1, 1, 2, 2, 0, 2, 1]
# class 0: TP 1 FP 1 FN 2; class 1: TP 2 FP 2 FN 0; class 2: TP 3 FP 1 FN 2


def test_accuracy_and_confusion_matrix_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == 0.6
    assert accuracy(Y_TRUE, Y_PRED, normalize=False) == 6
    logits = np.eye(3)[Y_PRED] * 5.0                            # (N, C) scores -> argmax
    assert accuracy(Y_TRUE, logits) == 0.6
    assert accuracy([[1, -100], [2, 2]], [[1, 0], [0, 2]], ignore_index=-100) == 2 / 3
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.tolist() == [[1, 1, 1], [0, 2, 0], [1, 1, 3]]
    assert confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 0]).tolist() == [[3, 1], [1, 1]]
    np.testing.assert_allclose(confusion_matrix(Y_TRUE, Y_PRED, normalize="true").sum(1), 1)
    assert confusion_matrix(["b", "a"], ["a", "a"]).tolist() == [[1, 0], [1, 0]]


def test_precision_recall_f1_by_hand():
    p, r, f, s = precision_recall_fscore_support(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(p, [1 / 2, 2 / 4, 3 / 4])
    np.testing.assert_allclose(r, [1 / 3, 2 / 2, 3 / 5])
    np.testing.assert_allclose(f, [2 * 1 / (2 * 1 + 1 + 2), 2 * 2 / (4 + 2 + 0),
                                   2 * 3 / (6 + 1 + 2)])
    assert s.tolist() == [3, 2, 5]
    assert precision(Y_TRUE, Y_PRED, average="macro") == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert recall(Y_TRUE, Y_PRED, average="weighted") == pytest.approx(
        (3 * 1 / 3 + 2 * 1 + 5 * 0.6) / 10)
    for fn in (precision, recall, f1_score):                # micro = accuracy here
        assert fn(Y_TRUE, Y_PRED, average="micro") == pytest.approx(0.6)
    assert f1_score([0, 1, 1, 0], [0, 1, 0, 0]) == pytest.approx(2 / 3)   # binary, pos 1
    assert f1_score([0, 1, 1, 0], [0, 1, 0, 0], pos_label=0) == pytest.approx(0.8)
    assert fbeta_score([0, 1, 1, 0], [0, 1, 0, 0], beta=2) == pytest.approx(5 / 9)


def test_zero_division_like_sklearn():
    y_true, y_pred = [0, 0, 1], [0, 0, 0]                   # class 1 never predicted
    with pytest.warns(UndefinedMetricWarning, match="precision"):
        assert precision(y_true, y_pred) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision(y_true, y_pred, zero_division=1) == 1.0
        p = precision(y_true, y_pred, average=None, zero_division=np.nan)
        assert p[0] == pytest.approx(2 / 3) and np.isnan(p[1])
        assert precision(y_true, y_pred, average="macro",
                         zero_division=np.nan) == pytest.approx(2 / 3)
        # F is 0/0 only when the class is neither true nor predicted.
        assert f1_score([0, 0], [0, 0], labels=[0, 1], average=None,
                        zero_division=1).tolist() == [1.0, 1.0]
        assert f1_score(y_true, y_pred, average=None, zero_division=1)[1] == 0.0
    with pytest.raises(ValueError, match="zero_division"):
        precision(y_true, y_pred, zero_division=5)


def test_classification_bad_input():
    with pytest.raises(ValueError, match="3 samples but y_pred has 2"):
        f1_score([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        precision([], [])
    with pytest.raises(ValueError, match="binary"):
        f1_score([0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match=r"\(3,\) does not match"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="average"):
        recall([0, 1], [0, 1], average="mean")


# ----- perplexity ----------------------------------------------------------------------------

def test_perplexity():
    V = 7
    logits = np.zeros((2, 5, V))                              # uniform model: PPL = V
    targets = np.arange(10).reshape(2, 5) % V
    assert perplexity_from_logits(logits, targets) == pytest.approx(V)
    targets[1, 3:] = -100
    assert perplexity_from_logits(logits + 1e4, targets) == pytest.approx(V)   # stable
    lp = np.log([0.5, 0.25, 0.125, 1.0])
    assert perplexity_from_log_probs(lp) == pytest.approx(2 ** 1.5)
    assert perplexity_from_log_probs(lp, mask=[1, 1, 0, 0]) == pytest.approx(2 ** 1.5)
    assert perplexity(math.log(42)) == pytest.approx(42)
    assert perplexity(1e6) == math.inf
    with pytest.raises(ValueError, match="zero tokens"):
        perplexity_from_log_probs([])
    with pytest.raises(ValueError, match="<= 0"):
        perplexity_from_log_probs([0.5])
    with pytest.raises(IndexError, match=r"\[0, 7\)"):
        perplexity_from_logits(np.zeros((1, 7)), [7])


# ----- BLEU ----------------------------------------------------------------------------------

HYPS = ["The cat sat on the mat.", "It is a guide to action which ensures that the military "
        "always obeys the commands of the party.", "hello there", "", "x",
        "He said: \"it's 3-4 o'clock, 1,000.5 &amp; $5!\""]
REFS = [["The cat is on the mat.", "There is a cat on the mat"],
        ["It is a guide to action that ensures that the military will forever heed Party "
         "commands.", "It is the guiding principle"], ["hello there general kenobi", "hi"],
        ["something", "x"], ["y z", "x y"], ["he said \"it's 3 - 4 o'clock, 1,000.5 & $5!\"",
                                              "q"]]
SMOOTHING = ["exp", "floor", "add-k", "none"]
WORDS = st.sampled_from("the a cat dog sat on mat is was here there".split())
SENTENCE = st.lists(WORDS, max_size=12).map(" ".join)


def test_bleu_by_hand():
    # hyp "a b c d" vs ref "a b c e": p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0 -> exp smoothing
    # gives p4 = 1 / (2 * 1); BP = 1.
    expected = 100 * math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2)
                               + math.log(1 / 2)) / 4)
    assert corpus_bleu(["a b c d"], ["a b c e"]).score == pytest.approx(expected)
    assert corpus_bleu(["a b c d"], ["a b c e"], smooth_method="none").score == 0.0
    assert sentence_bleu("a b c d", "a b c d").score == pytest.approx(100)
    short = corpus_bleu(["a b c d"], ["a b c d e f g h"])
    assert short.bp == pytest.approx(math.exp(1 - 8 / 4))
    assert bleu is corpus_bleu and float(short) == short.score


@pytest.mark.oracle
@pytest.mark.parametrize("tokenize", ["13a", "none"])
@pytest.mark.parametrize("smooth", SMOOTHING)
def test_bleu_equals_sacrebleu(tokenize, smooth):
    sacrebleu = pytest.importorskip("sacrebleu")
    streams = [list(s) for s in zip(*REFS)]
    ours = corpus_bleu(HYPS, REFS, tokenize=tokenize, smooth_method=smooth)
    theirs = sacrebleu.corpus_bleu(HYPS, streams, tokenize=tokenize, smooth_method=smooth)
    assert ours.score == pytest.approx(theirs.score, abs=1e-9)
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    for h, r in zip(HYPS, REFS):
        a = sentence_bleu(h, r, tokenize=tokenize, smooth_method=smooth)
        b = sacrebleu.sentence_bleu(h, r, tokenize=tokenize, smooth_method=smooth)
        assert a.score == pytest.approx(b.score, abs=1e-9), (h, r)
    lower = corpus_bleu(HYPS, REFS, tokenize=tokenize, lowercase=True, smooth_method=smooth)
    assert lower.score == pytest.approx(sacrebleu.corpus_bleu(
        HYPS, streams, tokenize=tokenize, lowercase=True, smooth_method=smooth).score, abs=1e-9)


@pytest.mark.oracle
@given(st.lists(st.tuples(SENTENCE, SENTENCE, SENTENCE), min_size=1, max_size=6),
       st.sampled_from(SMOOTHING))
def test_bleu_equals_sacrebleu_on_random_corpora(triples, smooth):
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = [h for h, _, _ in triples]
    refs = [[r1, r2] for _, r1, r2 in triples]
    ours = corpus_bleu(hyps, refs, tokenize="none", smooth_method=smooth).score
    theirs = sacrebleu.corpus_bleu(hyps, [[r[0] for r in refs], [r[1] for r in refs]],
                                   tokenize="none", smooth_method=smooth).score
    assert ours == pytest.approx(theirs, abs=1e-9)
    ours = sentence_bleu(hyps[0], refs[0], smooth_method=smooth).score
    assert ours == pytest.approx(sacrebleu.sentence_bleu(hyps[0], refs[0],
                                                         smooth_method=smooth).score, abs=1e-9)


@pytest.mark.oracle
@given(st.text(max_size=80))
def test_tokenize_13a_equals_sacrebleu(text):
    tok = pytest.importorskip("sacrebleu.tokenizers.tokenizer_13a")
    assert tokenize_13a(text) == tok.Tokenizer13a()(text)


def test_bleu_bad_input():
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference"):
        corpus_bleu(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="hypothesis 1 has no reference"):
        corpus_bleu(["a", "b"], [["a"], []])
    with pytest.raises(ValueError, match="zero hypotheses"):
        corpus_bleu([], [])
    with pytest.raises(TypeError, match="list of hypotheses"):
        corpus_bleu("a b", ["a b"])
    with pytest.raises(ValueError, match="smooth_method"):
        corpus_bleu(["a"], ["a"], smooth_method="magic")
    assert corpus_bleu([""], [""]).score == 0.0


# ----- ROUGE ---------------------------------------------------------------------------------

PREDS = ["the quick brown fox\njumps over the lazy dog", "Running runners ran; they're used",
         "", "police killed the gunman", "a b c a b c\nc b a"]
TARGETS = ["a quick brown dog\njumps over the fox quickly", "the runner was running, used",
           "something", "the gunman police killed", "a b c\nc b a b c"]
TYPES = ("rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum")


def _check_against_rouge_score(preds, targets, use_stemmer, stemmer=None):
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=use_stemmer)
    for p, t in zip(preds, targets):
        theirs = scorer.score(t, p)
        ours = rouge_scores(p, t, TYPES, use_stemmer=use_stemmer, stemmer=stemmer)
        for k in TYPES:
            for field in ("precision", "recall", "fmeasure"):
                assert getattr(ours[k], field) == pytest.approx(getattr(theirs[k], field),
                                                                abs=1e-9), (p, t, k)


@pytest.mark.oracle
def test_rouge_equals_rouge_score():
    _check_against_rouge_score(PREDS, TARGETS, use_stemmer=False)


@pytest.mark.oracle
def test_rouge_with_stemming():
    # Words on which snowball "porter" and NLTK's extended Porter agree: identical scores.
    _check_against_rouge_score(PREDS[:1] + PREDS[3:], TARGETS[:1] + TARGETS[3:], True)
    # With NLTK's stemmer passed in, rouge-score is matched on every input.
    porter = pytest.importorskip("nltk.stem.porter")
    _check_against_rouge_score(PREDS, TARGETS, True, porter.PorterStemmer().stem)
    # The documented difference: "they" -> "thei" (snowball porter) vs "they" (NLTK).
    assert rouge_tokenize("they used", stemmer=None) == ["they", "used"]
    from tinygrad_llm.data.cleaning import get_stemmer
    assert get_stemmer("porter").stemWords(["they", "used"]) == ["thei", "us"]


@pytest.mark.oracle
def test_snowball_porter_equals_nltk_original_algorithm():
    porter = pytest.importorskip("nltk.stem.porter")
    nltk_stem = porter.PorterStemmer(mode=porter.PorterStemmer.ORIGINAL_ALGORITHM).stem
    from tinygrad_llm.data import default_corpus
    from tinygrad_llm.data.cleaning import get_stemmer
    words = sorted(set(rouge_tokenize(default_corpus(100_000))))
    assert get_stemmer("porter").stemWords(words) == [nltk_stem(w) for w in words]


@pytest.mark.oracle
@given(st.lists(st.tuples(SENTENCE, SENTENCE), min_size=1, max_size=3))
def test_rouge_equals_rouge_score_on_random_text(pairs):
    preds = ["\n".join(p.split(" on ")) for p, _ in pairs]      # some multi-sentence texts
    targets = ["\n".join(t.split(" is ")) for _, t in pairs]
    _check_against_rouge_score(preds, targets, use_stemmer=False)


def test_rouge_by_hand_and_aggregation():
    s = rouge_n("the cat sat", "the cat ran", n=1)
    assert (s.precision, s.recall, s.fmeasure) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert rouge_l("a b c d", "a c d b").recall == pytest.approx(3 / 4)
    best = rouge_scores("the cat", ["dog", "the cat"])["rouge1"]      # best reference wins
    assert best.fmeasure == 1.0
    avg = rouge(["the cat", "a dog"], ["the cat", "the cow"], ("rouge1",))["rouge1"]
    assert avg.fmeasure == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="rougeX"):
        rouge_scores("a", "a", ("rougeX",))
    with pytest.raises(ValueError, match="at least one reference"):
        rouge_scores("a", [])


# ----- embeddings ----------------------------------------------------------------------------

def test_cosine_similarity():
    assert cosine_similarity([1, 0], [0, 2]) == 0.0
    assert cosine_similarity([1, 1], [2, 2]) == pytest.approx(1.0)
    assert cosine_similarity([1, 0], [0, 0]) == 0.0                    # zero vector: 0
    m = cosine_similarity(np.array([[1.0, 0], [0, 1], [1, 1]]))
    np.testing.assert_allclose(np.diag(m), 1.0)
    assert m[0, 2] == pytest.approx(1 / math.sqrt(2))
    with pytest.raises(ValueError, match="size 2 and 3"):
        cosine_similarity([1, 0], [1, 0, 0])


def test_neighbours_and_analogies():
    # Axes: royalty, gender (+1 male, -1 female), and a "fruit" axis.
    words = ["king", "queen", "man", "woman", "apple", "prince"]
    E = np.array([[1, 1, 0], [1, -1, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0.9, 1.1, 0.1]])
    vocab = {w: i for i, w in enumerate(words)}
    idx, sims = nearest_neighbors(E, "king", k=2, vocab=vocab)
    assert [words[i] for i in idx] == ["prince", "man"] and sims[0] > sims[1]
    idx, _ = nearest_neighbors(E, E[4], k=1)
    assert idx.tolist() == [4]                                          # a vector query
    idx, _ = analogy(E, "king", "man", "woman", vocab=vocab)            # king - man + woman
    assert words[idx[0]] == "queen"
    idx, _ = most_similar(E, positive=["king"], negative=["man"], k=2, vocab=vocab)
    assert "king" not in [words[i] for i in idx]
    with pytest.raises(KeyError, match="emperor"):
        analogy(E, "emperor", "man", "woman", vocab=vocab)
    with pytest.raises(IndexError, match="index 9"):
        nearest_neighbors(E, 9)
