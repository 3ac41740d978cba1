"""ROUGE (Lin 2004): recall-oriented overlap between a summary and its reference(s),
computed the way Google's ``rouge-score`` package computes it.

Tokenization: lowercase, replace every run of characters outside ``[a-z0-9]`` by a space,
split; with stemming, words longer than 3 characters are stemmed.

ROUGE-N, with ``count(g, x)`` the number of n-grams g in token list x:

    overlap   = sum_g min(count(g, pred), count(g, ref))
    precision = overlap / max(1, #n-grams of pred)
    recall    = overlap / max(1, #n-grams of ref)
    F         = 2 P R / (P + R)        (0 when P + R = 0)

ROUGE-L uses the longest common subsequence: P = LCS / |pred|, R = LCS / |ref| (0 if either
is empty). ROUGE-Lsum splits both texts into sentences at newlines and, for every reference
sentence r, counts the tokens of the union of LCS(r, c) over the predicted sentences c
(each token counted at most as often as it occurs in both texts):
P = hits / |pred tokens|, R = hits / |ref tokens|.

With several references the one with the best F is taken (rouge-score's ``score_multi``).

Stemming: by default snowballstemmer's "porter" (Porter's original 1980 algorithm).
rouge-score uses NLTK's ``PorterStemmer()`` in its default NLTK_EXTENSIONS mode, which
differs on about 1% of words ("they": "they" vs "thei", "used": "use" vs "us",
"array": "array" vs "arrai"); pass ``stemmer=nltk.stem.PorterStemmer().stem`` to match it
exactly (the snowball "porter" stemmer equals NLTK's ORIGINAL_ALGORITHM mode).
"""
import re
from collections import Counter
from dataclasses import dataclass

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_VALID = re.compile(r"^[a-z0-9]+$")


@dataclass
class RougeScore:
    """Precision, recall and F-measure (rouge-score's ``Score``)."""

    precision: float
    recall: float
    fmeasure: float


def _default_stemmer():
    from ..data.cleaning import get_stemmer
    return get_stemmer("porter").stemWord


def rouge_tokenize(text, stemmer=None):
    """Tokens as rouge-score makes them; ``stemmer`` is a callable ``str -> str``."""
    tokens = _NON_ALNUM.sub(" ", text.lower()).split()
    if stemmer is not None:
        tokens = [stemmer(t) if len(t) > 3 else t for t in tokens]
    return [t for t in tokens if _VALID.match(t)]


def _f(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _ngram_counts(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _score_ngrams(pred, ref, n):
    p_counts, r_counts = _ngram_counts(pred, n), _ngram_counts(ref, n)
    overlap = sum(min(c, p_counts[g]) for g, c in r_counts.items())
    precision = overlap / max(sum(p_counts.values()), 1)
    recall = overlap / max(sum(r_counts.values()), 1)
    return RougeScore(precision, recall, _f(precision, recall))


def lcs_table(a, b):
    """DP table T with T[i][j] = length of the LCS of a[:i] and b[:j]."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        row, prev = table[i], table[i - 1]
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            row[j] = prev[j - 1] + 1 if ai == b[j - 1] else max(prev[j], row[j - 1])
    return table


def lcs_indices(a, b):
    """Indices into ``a`` of one LCS of a and b. Backtracking from the end: on a match
    step diagonally, else move left when T[i][j-1] > T[i-1][j], otherwise up (the same
    choice as rouge-score, which matters for ROUGE-Lsum's union)."""
    t = lcs_table(a, b)
    i, j = len(a), len(b)
    out = []
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        elif t[i][j - 1] > t[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return out[::-1]


def _score_lcs(pred, ref):
    if not pred or not ref:
        return RougeScore(0.0, 0.0, 0.0)
    lcs = lcs_table(ref, pred)[-1][-1]
    precision, recall = lcs / len(pred), lcs / len(ref)
    return RougeScore(precision, recall, _f(precision, recall))


def _score_lsum(pred_sents, ref_sents):
    m = sum(map(len, ref_sents))
    n = sum(map(len, pred_sents))
    if not m or not n:
        return RougeScore(0.0, 0.0, 0.0)
    ref_left = Counter(t for s in ref_sents for t in s)
    pred_left = Counter(t for s in pred_sents for t in s)
    hits = 0
    for r in ref_sents:
        union = sorted(set().union(*(lcs_indices(r, c) for c in pred_sents)))
        for token in (r[i] for i in union):
            if ref_left[token] > 0 and pred_left[token] > 0:
                hits += 1
                ref_left[token] -= 1
                pred_left[token] -= 1
    precision, recall = hits / n, hits / m
    return RougeScore(precision, recall, _f(precision, recall))


def _rouge_type_scorer(rouge_type):
    if rouge_type == "rougeL":
        return lambda p, r, tok: _score_lcs(tok(p), tok(r))
    if rouge_type == "rougeLsum":
        def lsum(p, r, tok):
            def sents(text):
                return [tok(s) for s in text.split("\n") if s]
            return _score_lsum(sents(p), sents(r))
        return lsum
    m = re.fullmatch(r"rouge([1-9])", rouge_type)
    if m:
        n = int(m.group(1))
        return lambda p, r, tok: _score_ngrams(tok(p), tok(r), n)
    raise ValueError(f"unknown ROUGE type {rouge_type!r}; use 'rouge1'..'rouge9', 'rougeL' "
                     "or 'rougeLsum'")


def rouge_scores(prediction, references, rouge_types=("rouge1", "rouge2", "rougeL"), *,
                 use_stemmer=False, stemmer=None):
    """``{rouge_type: RougeScore}`` for one prediction against one reference string or a
    list of them (best F per type). Note the argument order: prediction first (rouge-score's
    ``scorer.score`` takes the target first)."""
    if not isinstance(prediction, str):
        raise TypeError(f"prediction must be a str, got {type(prediction).__name__}")
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("ROUGE needs at least one reference")
    if stemmer is None and use_stemmer:
        stemmer = _default_stemmer()

    def tok(text):
        return rouge_tokenize(text, stemmer)
    out = {}
    for rouge_type in rouge_types:
        score = _rouge_type_scorer(rouge_type)
        candidates = [score(prediction, r, tok) for r in refs]
        out[rouge_type] = max(candidates, key=lambda s: s.fmeasure)   # first on ties
    return out


def rouge(predictions, references, rouge_types=("rouge1", "rouge2", "rougeL"), *,
          use_stemmer=False, stemmer=None):
    """Mean ROUGE over a corpus: ``{rouge_type: RougeScore}`` whose fields are the averages
    of the per-pair precision, recall and F. ``references[i]`` is a string or a list."""
    if isinstance(predictions, str):
        raise TypeError("rouge expects a list of predictions; use rouge_scores for one")
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} "
                         "references")
    if not predictions:
        raise ValueError("ROUGE of zero predictions is undefined")
    per_pair = [rouge_scores(p, r, rouge_types, use_stemmer=use_stemmer, stemmer=stemmer)
                for p, r in zip(predictions, references)]
    n = len(per_pair)
    return {t: RougeScore(sum(s[t].precision for s in per_pair) / n,
                          sum(s[t].recall for s in per_pair) / n,
                          sum(s[t].fmeasure for s in per_pair) / n) for t in rouge_types}


def rouge_n(prediction, reference, n=2, **kwargs):
    """ROUGE-N of one prediction (see :func:`rouge_scores` for the keyword arguments)."""
    return rouge_scores(prediction, reference, (f"rouge{n}",), **kwargs)[f"rouge{n}"]


def rouge_l(prediction, reference, **kwargs):
    """ROUGE-L (LCS-based) of one prediction."""
    return rouge_scores(prediction, reference, ("rougeL",), **kwargs)["rougeL"]
