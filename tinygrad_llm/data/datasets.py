"""Datasets for the documents' tasks: language modelling, classification, seq2seq.

Shapes: B batch, T block (context) length. Token ids are int64 throughout.

- :class:`LMWindowDataset`: next-token prediction windows from one token stream,
  ``x = tokens[i : i+T]``, ``y = tokens[i+1 : i+T+1]`` (y is x shifted left by one).
- :func:`stratified_split` and :class:`ClassificationDataset`: labelled texts with
  train/validation/test splits that keep each class's share.
- :class:`Seq2SeqDataset`: (source, target) pairs for an encoder-decoder, with the
  decoder input shifted right (``<bos> y``) and labels ``y <eos>``.

Randomness always comes from a ``numpy.random.Generator`` or a seed, never global state.
"""
import numpy as np


def _as_token_array(tokens, name="tokens"):
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D token stream, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


class LMWindowDataset:
    """Fixed-length language-model windows over a token stream.

    Window ``i`` starts at ``i * stride`` (``stride`` defaults to ``block_size``:
    non-overlapping windows covering the stream); item ``i`` is ``(x, y)`` with
    ``x = tokens[s : s+T]`` and ``y = tokens[s+1 : s+T+1]``. The number of windows is
    ``(len(tokens) - T - 1) // stride + 1``. Use a :class:`~.loader.DataLoader` for
    sequential or shuffled epochs, or :meth:`random_batch` for nanoGPT-style sampling.
    """

    def __init__(self, tokens, block_size, stride=None):
        self.tokens = _as_token_array(tokens)
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = int(block_size)
        self.stride = self.block_size if stride is None else int(stride)
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if len(self.tokens) < self.block_size + 1:
            raise ValueError(f"a token stream of length {len(self.tokens)} is too short for "
                             f"block_size={block_size} (needs at least {block_size + 1})")

    def __len__(self):
        return (len(self.tokens) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, i):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"window {i} out of range for {n} windows")
        s = (i % n) * self.stride
        return self.tokens[s:s + self.block_size], self.tokens[s + 1:s + self.block_size + 1]

    def __getitems__(self, indices):
        return [self[i] for i in indices]

    def random_batch(self, batch_size, rng):
        """(x, y) of shape (B, T) from ``batch_size`` uniformly random start offsets in
        ``[0, len(tokens) - T - 1]`` (any offset, not only multiples of the stride)."""
        T = self.block_size
        starts = rng.integers(0, len(self.tokens) - T, size=batch_size)
        offsets = starts[:, None] + np.arange(T)                          # (B, T)
        return self.tokens[offsets], self.tokens[offsets + 1]


def lm_windows(tokens, block_size, stride=None):
    """All windows of :class:`LMWindowDataset` at once: ``(X, Y)`` of shape (N, T)."""
    ds = LMWindowDataset(tokens, block_size, stride)
    starts = np.arange(len(ds)) * ds.stride
    offsets = starts[:, None] + np.arange(ds.block_size)                   # (N, T)
    return ds.tokens[offsets], ds.tokens[offsets + 1]


def _split_counts(n, fractions):
    """Integer sizes summing to n, proportional to fractions (largest remainder)."""
    raw = np.asarray(fractions, dtype=np.float64) * n
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:n - counts.sum()]] += 1
    return counts


def stratified_split(labels, val_fraction=0.1, test_fraction=0.1, *, seed=0, stratify=True):
    """Split indices ``0..N-1`` into (train, validation, test) index arrays.

    With ``stratify`` each class is split on its own (shuffled, then cut by the fractions
    with largest-remainder rounding), so every split keeps the class proportions; the
    resulting index arrays are shuffled. Deterministic for a given ``seed``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(f"need 0 <= val_fraction, test_fraction and a sum below 1, got "
                         f"{val_fraction} and {test_fraction}")
    rng = np.random.default_rng(seed)
    fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
    groups = ([np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify
              else [np.arange(len(labels))])
    parts = ([], [], [])
    for idx in groups:
        idx = rng.permutation(idx)
        bounds = np.cumsum(_split_counts(len(idx), fractions))
        for part, chunk in zip(parts, np.split(idx, bounds[:-1])):
            part.append(chunk)
    return tuple(rng.permutation(np.concatenate(p).astype(np.int64)) for p in parts)


class ClassificationDataset:
    """Labelled texts. Item ``i`` is ``{"input_ids": ids, "labels": label}``.

    With a ``tokenizer`` the texts are encoded up front (``add_special_tokens`` applies its
    template, ``max_length`` truncates, keeping the template tokens); without one the
    "texts" must already be id sequences. Batch with ``PadCollate(tokenizer.pad_token_id)``.
    """

    def __init__(self, texts, labels, tokenizer=None, max_length=None,
                 add_special_tokens=True):
        if len(texts) != len(labels):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        self.labels = np.asarray(labels, dtype=np.int64)
        if tokenizer is None:
            self.input_ids = [np.asarray(t, dtype=np.int64) for t in texts]
        else:
            enc = [tokenizer.encode(t, add_special_tokens=add_special_tokens) for t in texts]
            if max_length is not None:
                templated = add_special_tokens and tokenizer.template != "none"
                enc = [_truncate_keep_ends(e, max_length, templated) for e in enc]
            self.input_ids = [np.asarray(e, dtype=np.int64) for e in enc]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}

    def split(self, val_fraction=0.1, test_fraction=0.1, *, seed=0, stratify=True):
        """(train, validation, test) :class:`~.loader.Subset` views, stratified by label."""
        from .loader import Subset
        idx = stratified_split(self.labels, val_fraction, test_fraction, seed=seed,
                               stratify=stratify)
        return tuple(Subset(self, i) for i in idx)


def _truncate_keep_ends(ids, max_length, has_template):
    """Cut ``ids`` to ``max_length``, keeping the last (template) token when there is one."""
    if len(ids) <= max_length:
        return ids
    if has_template and max_length >= 2:
        return ids[:max_length - 1] + ids[-1:]
    return ids[:max_length]


class Seq2SeqDataset:
    """(source, target) pairs for an encoder-decoder trained with teacher forcing.

    Item ``i`` is ``{"input_ids": src, "decoder_input_ids": [bos] + tgt,
    "labels": tgt + [eos]}``: at step t the decoder sees ``<bos> y_1 .. y_{t-1}`` and must
    predict ``y_t`` (and finally ``<eos>``). Sources/targets are strings (with a
    ``tokenizer``, or ``src_tokenizer``/``tgt_tokenizer`` for two vocabularies) or id
    sequences (then give ``bos_token_id``/``eos_token_id``). Batch with
    ``PadCollate(pad_id)``: labels are padded with -100 so the loss ignores them.
    """

    def __init__(self, sources, targets, tokenizer=None, *, src_tokenizer=None,
                 tgt_tokenizer=None, bos_token_id=None, eos_token_id=None,
                 add_eos_to_source=False):
        if len(sources) != len(targets):
            raise ValueError(f"got {len(sources)} sources but {len(targets)} targets")
        src_tok = src_tokenizer or tokenizer
        tgt_tok = tgt_tokenizer or tokenizer
        bos = bos_token_id if bos_token_id is not None else getattr(tgt_tok, "bos_token_id",
                                                                      None)
        eos = eos_token_id if eos_token_id is not None else getattr(tgt_tok, "eos_token_id",
                                                                      None)
        if bos is None or eos is None:
            raise ValueError("Seq2SeqDataset needs bos and eos ids (a tokenizer with "
                             "bos_token/eos_token, or bos_token_id=/eos_token_id=)")
        self.bos_token_id, self.eos_token_id = int(bos), int(eos)
        self.sources = [self._ids(s, src_tok) + ([eos] if add_eos_to_source else [])
                        for s in sources]
        self.targets = [self._ids(t, tgt_tok) for t in targets]

    @staticmethod
    def _ids(x, tok):
        if isinstance(x, str):
            if tok is None:
                raise ValueError("string inputs need a tokenizer")
            return tok.encode(x)
        return [int(v) for v in x]

    def __len__(self):
        return len(self.sources)

    def __getitem__(self, i):
        tgt = self.targets[i]
        return {
            "input_ids": np.asarray(self.sources[i], dtype=np.int64),
            "decoder_input_ids": np.asarray([self.bos_token_id] + tgt, dtype=np.int64),
            "labels": np.asarray(tgt + [self.eos_token_id], dtype=np.int64),
        }
