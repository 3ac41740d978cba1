"""BLEU (Papineni et al. 2002), computed the way sacreBLEU computes it.

For a hypothesis h with references R (after tokenization; tokens are whitespace-separated):

    count_n(g, h)   = occurrences of n-gram g in h
    clip_n(g)       = min(count_n(g, h), max_{r in R} count_n(g, r))
    correct_n       = sum_g clip_n(g)             total_n = max(0, |h| - n + 1)

Corpus BLEU sums correct_n, total_n, the hypothesis lengths c and the reference lengths r
(for each sentence the reference length closest to |h|, the shorter one on ties) over all
sentences, then

    p_n  = correct_n / total_n                    (modified n-gram precision)
    BP   = 1 if c >= r else exp(1 - r / c)         (brevity penalty; 0 if c = 0)
    BLEU = 100 * BP * exp((1/N) sum_{n=1..N} log p_n)        (N = max_order = 4)

Smoothing of zero counts (Chen & Cherry 2014), as in sacreBLEU:

- ``"none"``: any p_n = 0 makes BLEU 0;
- ``"floor"``: p_n = smooth_value / total_n when correct_n = 0 (smooth_value 0.1);
- ``"add-k"``: correct_n += k, total_n += k for n >= 2 (k = smooth_value = 1);
- ``"exp"``: the k-th order with correct_n = 0 gets p_n = 1 / (2^k total_n) (NIST's
  method; sacreBLEU's default).

If no n-gram matches at all, BLEU is 0. ``effective_order`` (sacreBLEU's default for sentence
BLEU) averages only over the orders n for which total_n > 0, so a 3-word sentence is not
penalized for having no 4-grams. Scores are in [0, 100] like sacreBLEU's.

Tokenizers: ``"13a"`` (mteval-v13a, sacreBLEU's default), ``"none"`` (split on whitespace:
for text you tokenized yourself), or any callable ``str -> str``.
"""
import math
import re
from collections import Counter
from dataclasses import dataclass, field

SMOOTH_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}

# mteval-v13a: pad each of these characters with spaces. The class is the ASCII ranges
# {|}~  [\]^_`  space!"#$%&  ()*+  :;<=>?@  and /  (apostrophe, comma, hyphen, period
# and the word characters are handled by the rules after it).
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),      # period/comma not preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),      # period/comma not followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),           # dash preceded by a digit
)


def tokenize_13a(line):
    """mteval-v13a tokenization (WMT's standard), returning a space-separated string."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (line.replace("&quot;", '"').replace("&amp;", "&")
                .replace("&lt;", "<").replace("&gt;", ">"))
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


@dataclass
class BLEUScore:
    """BLEU and its sufficient statistics (``float(score)`` gives the score)."""

    score: float
    counts: list = field(default_factory=list)       # correct_n, n = 1..N
    totals: list = field(default_factory=list)       # total_n
    precisions: list = field(default_factory=list)   # 100 * p_n (after smoothing)
    bp: float = 1.0
    sys_len: int = 0
    ref_len: int = 0

    def __float__(self):
        return float(self.score)


def _tokenizer(tokenize):
    if callable(tokenize):
        return tokenize
    if tokenize == "13a":
        return tokenize_13a
    if tokenize == "none":
        return lambda s: s
    raise ValueError(f"tokenize must be '13a', 'none' or a callable, got {tokenize!r}")


def _ngrams(tokens, max_order):
    counts = Counter()
    for n in range(1, max_order + 1):
        for i in range(len(tokens) - n + 1):
            counts[tuple(tokens[i:i + n])] += 1
    return counts


def _sentence_stats(hyp, refs, max_order, tok, lowercase):
    """[hyp_len, ref_len, correct_1..N, total_1..N] of one segment."""
    def prep(s):
        if not isinstance(s, str):
            raise TypeError(f"BLEU expects strings, got {type(s).__name__}: {s!r}")
        return tok((s.lower() if lowercase else s).rstrip()).split()
    h = prep(hyp)
    ref_tokens = [prep(r) for r in refs]
    max_ref = Counter()
    for r in ref_tokens:
        max_ref |= _ngrams(r, max_order)          # | keeps the max count per n-gram
    # Closest reference length, the shorter one on ties.
    ref_len = min((abs(len(r) - len(h)), len(r)) for r in ref_tokens)[1]
    correct = [0] * max_order
    total = [0] * max_order
    for gram, c in _ngrams(h, max_order).items():
        n = len(gram) - 1
        total[n] += c
        correct[n] += min(c, max_ref.get(gram, 0))
    return [len(h), ref_len] + correct + total


def compute_bleu(correct, total, sys_len, ref_len, *, smooth_method="exp", smooth_value=None,
                 effective_order=False, max_order=4):
    """BLEU from summed statistics (the formula of the module docstring)."""
    if smooth_method not in SMOOTH_DEFAULTS:
        raise ValueError(f"smooth_method must be one of {sorted(SMOOTH_DEFAULTS)}, got "
                         f"{smooth_method!r}")
    if smooth_value is None:
        smooth_value = SMOOTH_DEFAULTS[smooth_method]
    correct, total = list(correct), list(total)
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * max_order
    if not any(correct):
        return BLEUScore(0.0, correct, total, precisions, bp, sys_len, ref_len)
    exp_factor = 1.0
    order = max_order
    for n in range(1, max_order + 1):
        if smooth_method == "add-k" and n > 1:
            correct[n - 1] += smooth_value
            total[n - 1] += smooth_value
        if total[n - 1] == 0:
            break                  # no n-grams of this order (or higher) in the hypotheses
        if effective_order:
            order = n
        if correct[n - 1] == 0:
            if smooth_method == "exp":
                exp_factor *= 2
                precisions[n - 1] = 100.0 / (exp_factor * total[n - 1])
            elif smooth_method == "floor":
                precisions[n - 1] = 100.0 * smooth_value / total[n - 1]
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    if any(p == 0.0 for p in precisions[:order]):
        score = 0.0                # log 0: an unsmoothed zero precision zeroes BLEU
    else:
        score = bp * math.exp(sum(math.log(p) for p in precisions[:order]) / order)
    return BLEUScore(score, correct, total, precisions, bp, sys_len, ref_len)


def _as_reference_lists(hypotheses, references):
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(hypotheses)} hypotheses but {len(references)} "
                         "reference entries (one list of references per hypothesis)")
    out = []
    for i, refs in enumerate(references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError(f"hypothesis {i} has no reference")
        out.append(refs)
    return out


def corpus_bleu(hypotheses, references, *, smooth_method="exp", smooth_value=None,
                tokenize="13a", lowercase=False, effective_order=False, max_order=4):
    """Corpus BLEU of a list of hypothesis strings.

    ``references[i]`` is the reference string of hypothesis i, or a list of them (the
    number may vary per hypothesis). Note: sacreBLEU takes the transpose, a list of
    reference *streams*; ``references = list(zip(*streams))`` converts.
    """
    if isinstance(hypotheses, str):
        raise TypeError("corpus_bleu expects a list of hypotheses; use sentence_bleu for one")
    hypotheses = list(hypotheses)
    if not hypotheses:
        raise ValueError("corpus_bleu of zero hypotheses is undefined")
    references = _as_reference_lists(hypotheses, list(references))
    tok = _tokenizer(tokenize)
    stats = [0] * (2 + 2 * max_order)
    for hyp, refs in zip(hypotheses, references):
        for k, v in enumerate(_sentence_stats(hyp, refs, max_order, tok, lowercase)):
            stats[k] += v
    return compute_bleu(stats[2:2 + max_order], stats[2 + max_order:], stats[0], stats[1],
                        smooth_method=smooth_method, smooth_value=smooth_value,
                        effective_order=effective_order, max_order=max_order)


def sentence_bleu(hypothesis, references, *, smooth_method="exp", smooth_value=None,
                  tokenize="13a", lowercase=False, effective_order=True, max_order=4):
    """BLEU of one hypothesis against one reference string or a list of them.

    Defaults follow sacreBLEU's ``sentence_bleu``: 'exp' smoothing and effective order.
    """
    if not isinstance(hypothesis, str):
        raise TypeError(f"sentence_bleu expects one hypothesis string, got "
                        f"{type(hypothesis).__name__}")
    return corpus_bleu([hypothesis], [references], smooth_method=smooth_method,
                       smooth_value=smooth_value, tokenize=tokenize, lowercase=lowercase,
                       effective_order=effective_order, max_order=max_order)


bleu = corpus_bleu
