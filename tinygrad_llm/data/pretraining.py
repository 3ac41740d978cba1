"""Self-supervised training data: skip-gram pairs, masked-LM masking, next-sentence pairs.

- Skip-gram (word2vec, Mikolov et al. 2013): every (center, context) pair within a window;
  negatives drawn from the unigram distribution raised to 3/4,
  ``P(w) = count(w)^0.75 / sum_v count(v)^0.75``.
- Masked LM (BERT, Devlin et al. 2019): choose 15% of the non-special tokens; of those 80%
  become [MASK], 10% a random token, 10% stay; ``labels`` hold the original id at chosen
  positions and -100 (the loss's ignore index, PyTorch/HF convention) elsewhere.
- Next-sentence prediction: sentence pairs (A, B), B the real next sentence half the time
  (label 0 = IsNext) and a random sentence from another document otherwise (1 = NotNext),
  as in HF's ``BertForPreTraining``.

Every function takes a ``numpy.random.Generator`` (``rng``) so results are reproducible.
"""
import re

import numpy as np

from .tokenizer_base import truncate_pair

IGNORE_INDEX = -100


def skipgram_pairs(token_ids, window=2, *, rng=None, dynamic_window=False):
    """All (center, context) pairs with ``0 < |offset| <= window``, as two int64 arrays.

    Pairs are ordered by center position, then by offset from ``-window`` to ``+window``.
    With ``dynamic_window`` (word2vec's trick, weighting near words more) each center draws
    its own window ``b ~ Uniform{1..window}`` from ``rng``.
    """
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    n = len(ids)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])   # (2W,)
    pos = np.arange(n)[:, None] + offsets[None, :]                               # (n, 2W)
    valid = (pos >= 0) & (pos < n)
    if dynamic_window:
        if rng is None:
            raise ValueError("dynamic_window=True needs an rng")
        reach = rng.integers(1, window + 1, size=n)                               # (n,)
        valid &= np.abs(offsets)[None, :] <= reach[:, None]
    centers = np.broadcast_to(ids[:, None], pos.shape)[valid]
    contexts = ids[pos[valid]]
    return centers.astype(np.int64), contexts.astype(np.int64)


def subsample_frequent(token_ids, counts, threshold=1e-5, *, rng):
    """word2vec's subsampling: keep token w with probability ``min(1, sqrt(t / f(w)))``,
    f(w) = count(w) / total count, t = ``threshold``. Returns the kept ids."""
    ids = np.asarray(token_ids, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / counts.sum()
    with np.errstate(divide="ignore"):
        keep_prob = np.minimum(1.0, np.sqrt(threshold / freq))
    return ids[rng.random(len(ids)) < keep_prob[ids]]


class NegativeSampler:
    """Draw ids from ``P(w) ∝ count(w) ** power`` (power 0.75 as in word2vec).

    Sampling inverts the cumulative distribution: ``searchsorted(cdf, u)``, u ~ U[0, 1).
    """

    def __init__(self, counts, power=0.75, rng=None, seed=0):
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1 or counts.size == 0 or (counts < 0).any() or counts.sum() <= 0:
            raise ValueError("counts must be a non-empty 1-D array of non-negative numbers "
                             "with a positive sum")
        weights = counts ** power
        self.probs = weights / weights.sum()
        self.cdf = np.cumsum(self.probs)
        self.rng = np.random.default_rng(seed) if rng is None else rng

    def sample(self, size):
        """Ids of the given shape."""
        u = self.rng.random(size) * self.cdf[-1]
        return np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.cdf) - 1)


class SkipGramDataset:
    """Skip-gram with negative sampling: item ``i`` is
    ``{"center": c, "context": o, "negatives": (K,) ids}``.

    ``counts`` default to the token counts of ``token_ids`` (``vocab_size`` long).
    Negatives are drawn once, up front, from a generator seeded by ``seed``.
    """

    def __init__(self, token_ids, vocab_size, window=2, num_negatives=5, *, counts=None,
                 seed=0, dynamic_window=False):
        ids = np.asarray(token_ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"token ids must lie in [0, {vocab_size}), got range "
                             f"[{ids.min()}, {ids.max()}]")
        rng = np.random.default_rng(seed)
        if counts is None:
            counts = np.bincount(ids, minlength=vocab_size)
        self.centers, self.contexts = skipgram_pairs(ids, window, rng=rng,
                                                     dynamic_window=dynamic_window)
        self.sampler = NegativeSampler(counts, rng=rng)
        self.negatives = self.sampler.sample((len(self.centers), num_negatives))

    def __len__(self):
        return len(self.centers)

    def __getitem__(self, i):
        return {"center": self.centers[i], "context": self.contexts[i],
                "negatives": self.negatives[i]}


def mask_tokens(input_ids, *, mask_token_id, vocab_size, rng, special_ids=(),
                special_tokens_mask=None, mlm_probability=0.15, exact_count=False,
                random_token_ids=None):
    """BERT's masking of a batch (any shape) of ids. Returns ``(masked_ids, labels)``.

    1. Candidates: positions that are not special (``special_tokens_mask`` == 1, or ids in
       ``special_ids``: [CLS], [SEP], [PAD], ...).
    2. Choose each candidate with probability ``mlm_probability`` (HF's Bernoulli draw), or,
       with ``exact_count``, exactly ``max(1, round(p * n_candidates))`` per row.
    3. Per chosen position draw u ~ U[0,1): u < 0.8 -> [MASK]; 0.8 <= u < 0.9 -> a random
       token (uniform over ``random_token_ids``, default all non-special ids below
       ``vocab_size``; HF also draws specials, we do not); else unchanged.
    4. ``labels`` = original id at chosen positions, -100 elsewhere.
    """
    ids = np.array(input_ids, dtype=np.int64)                # copy: the input is untouched
    if special_tokens_mask is not None:
        special = np.asarray(special_tokens_mask).astype(bool)
        if special.shape != ids.shape:
            raise ValueError(f"special_tokens_mask shape {special.shape} != input_ids shape "
                             f"{ids.shape}")
    else:
        special = np.isin(ids, np.asarray(list(special_ids), dtype=np.int64))
    candidates = ~special
    if exact_count:
        rows = ids.reshape(-1, ids.shape[-1]) if ids.ndim else ids.reshape(1, 1)
        cand_rows = candidates.reshape(rows.shape)
        chosen_rows = np.zeros(rows.shape, dtype=bool)
        for r in range(rows.shape[0]):
            pos = np.flatnonzero(cand_rows[r])
            if len(pos):
                k = max(1, int(round(mlm_probability * len(pos))))
                chosen_rows[r, rng.choice(pos, size=k, replace=False)] = True
        chosen = chosen_rows.reshape(ids.shape)
    else:
        chosen = candidates & (rng.random(ids.shape) < mlm_probability)
    labels = np.where(chosen, ids, IGNORE_INDEX)
    u = rng.random(ids.shape)
    to_mask = chosen & (u < 0.8)
    to_random = chosen & (u >= 0.8) & (u < 0.9)
    if random_token_ids is None:
        specials = np.unique(np.concatenate([np.asarray(list(special_ids), dtype=np.int64),
                                             ids[special], [mask_token_id]]))
        random_token_ids = np.setdiff1d(np.arange(vocab_size), specials)
    random_token_ids = np.asarray(random_token_ids, dtype=np.int64)
    ids[to_mask] = mask_token_id
    n_random = int(to_random.sum())
    if n_random:
        if random_token_ids.size == 0:
            raise ValueError("no ids left to draw random replacements from")
        ids[to_random] = rng.choice(random_token_ids, size=n_random)
    return ids, labels


class MaskedLMCollate:
    """Pad a batch of ``{"input_ids": ids}`` samples and mask it for MLM (HF's
    ``DataCollatorForLanguageModeling``). Padding and ``tokenizer.all_special_ids`` are
    never chosen. Returns input_ids, attention_mask, labels (and any other padded fields).
    """

    def __init__(self, tokenizer, mlm_probability=0.15, seed=0, max_length=None):
        from .loader import PadCollate
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("masked LM needs a tokenizer with mask_token and pad_token")
        self.tokenizer = tokenizer
        self.mlm_probability = mlm_probability
        self.rng = np.random.default_rng(seed)
        # input_ids pad with [PAD]; segments and attention masks with 0 (as HF); labels -100
        self.pad = PadCollate(tokenizer.pad_token_id, max_length=max_length, pad_values={
            "labels": -100, "token_type_ids": 0, "attention_mask": 0})

    def __call__(self, batch):
        out = self.pad(batch)
        special = self.tokenizer.get_special_tokens_mask(out["input_ids"])
        special |= (out["attention_mask"] == 0)
        out["input_ids"], out["labels"] = mask_tokens(
            out["input_ids"], mask_token_id=self.tokenizer.mask_token_id,
            vocab_size=self.tokenizer.vocab_size, rng=self.rng, special_tokens_mask=special,
            special_ids=self.tokenizer.all_special_ids, mlm_probability=self.mlm_probability)
        return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def split_sentences(text):
    """Naive sentence splitter: break after . ! ? followed by space and a capital/digit."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def make_nsp_pairs(documents, *, rng):
    """Next-sentence pairs from documents (each a list of sentences, strings or id lists).

    For every adjacent pair (s_i, s_{i+1}) of a document: with probability 1/2 keep it,
    label 0 (IsNext); otherwise replace s_{i+1} by a uniformly random sentence of another
    document, label 1 (NotNext). Returns a list of ``(sentence_a, sentence_b, label)``.
    """
    docs = [list(d) for d in documents]
    usable = [i for i, d in enumerate(docs) if len(d) >= 1]
    if len(usable) < 2:
        raise ValueError(f"next-sentence pairs need at least 2 non-empty documents, got "
                         f"{len(usable)}")
    pairs = []
    for di, doc in enumerate(docs):
        for i in range(len(doc) - 1):
            if rng.random() < 0.5:
                pairs.append((doc[i], doc[i + 1], 0))
            else:
                others = [j for j in usable if j != di]
                other = docs[others[rng.integers(len(others))]]
                pairs.append((doc[i], other[rng.integers(len(other))], 1))
    return pairs


class NextSentenceDataset:
    """Encoded NSP pairs: ``{"input_ids": [CLS] A [SEP] B [SEP], "token_type_ids",
    "next_sentence_label"}``; A and B are strings (encoded by ``tokenizer``) or id lists,
    cut longest-first so that the whole row fits ``max_length``."""

    def __init__(self, pairs, tokenizer, max_length=None):
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        if cls is None or sep is None:
            raise ValueError("next-sentence pairs need a tokenizer with cls_token and "
                             "sep_token")
        if max_length is not None and max_length < 3:
            raise ValueError(f"max_length={max_length} cannot hold [CLS] and two [SEP]")
        self.items = []
        for a, b, label in pairs:
            a = tokenizer.encode(a) if isinstance(a, str) else [int(t) for t in a]
            b = tokenizer.encode(b) if isinstance(b, str) else [int(t) for t in b]
            if max_length is not None:
                a, b = truncate_pair(a, b, max_length - 3)
            ids = [cls] + a + [sep] + b + [sep]
            types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
            self.items.append({"input_ids": np.asarray(ids, dtype=np.int64),
                               "token_type_ids": np.asarray(types, dtype=np.int64),
                               "next_sentence_label": np.int64(label)})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]
