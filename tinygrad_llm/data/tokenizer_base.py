"""What every tokenizer shares: vocabulary, special tokens, batch encoding, JSON files.

A subclass supplies ``_encode_chunk(text) -> list[int]`` (text holding no special token) and
``_decode_ids(ids) -> str`` (ids holding no special token); this class does the rest.

Special tokens have roles, as in HF ``transformers``: ``pad_token`` ([PAD]), ``unk_token``
([UNK]), ``cls_token`` ([CLS]), ``sep_token`` ([SEP]), ``mask_token`` ([MASK]), ``bos_token``
(<bos>) and ``eos_token`` (<eos>); any role may be absent (``None``). A special token found
in the input text is encoded as its own id, never split (leftmost-longest match, like HF).

Batch encoding returns NumPy int64 arrays of shape (B, T)::

    input_ids       token ids, padded with pad_token_id
    attention_mask  1 for a real token, 0 for padding
"""
import json
import os
import re

import numpy as np

DEFAULT_SPECIAL_TOKENS = {
    "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
    "mask_token": "[MASK]", "bos_token": "<bos>", "eos_token": "<eos>",
}
ROLES = tuple(DEFAULT_SPECIAL_TOKENS)
TEMPLATES = ("bos_eos", "bert", "none")
FORMAT_VERSION = 1


class BatchEncoding(dict):
    """A dict of arrays (``input_ids``, ``attention_mask``, ...) with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def pad_sequences(sequences, pad_value=0, *, max_length=None, padding_side="right",
                  dtype=np.int64):
    """Stack variable-length sequences into a (B, T) array and its attention mask.

    T = ``max_length`` or the longest sequence. Returns ``(padded, mask)`` with mask 1 on real
    entries. A sequence longer than ``max_length`` is an error (truncate first).
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    lengths = [len(s) for s in sequences]
    longest = max(lengths, default=0)
    T = longest if max_length is None else max_length
    if longest > T:
        raise ValueError(f"a sequence of length {longest} is longer than max_length={T}; "
                         "truncate first")
    padded = np.full((len(sequences), T), pad_value, dtype=dtype)
    mask = np.zeros((len(sequences), T), dtype=np.int64)
    for i, (seq, n) in enumerate(zip(sequences, lengths)):
        if n == 0:
            continue
        if padding_side == "right":
            padded[i, :n] = seq
            mask[i, :n] = 1
        else:
            padded[i, T - n:] = seq
            mask[i, T - n:] = 1
    return padded, mask


class Tokenizer:
    """Base class: maps text <-> ids through ``vocab`` (token -> id, ids 0..V-1 contiguous).

    ``special_tokens`` maps roles to token strings (missing roles are absent);
    ``extra_special_tokens`` are further never-split tokens without a role (e.g. GPT-2's
    ``<|endoftext|>``). ``template`` says what ``add_special_tokens=True`` adds:
    ``"bos_eos"`` -> ``<bos> A <eos>``, ``"bert"`` -> ``[CLS] A [SEP]`` (and
    ``[CLS] A [SEP] B [SEP]`` for pairs), ``"none"`` -> nothing.
    """

    kind = "base"

    def __init__(self, vocab, special_tokens=None, extra_special_tokens=(), template="bos_eos"):
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"vocabulary ids must be 0..{len(ids) - 1} without gaps or "
                             "duplicates")
        self.vocab = dict(vocab)
        self.id_to_token_list = [None] * len(vocab)
        for tok, i in self.vocab.items():
            self.id_to_token_list[i] = tok
        special_tokens = {} if special_tokens is None else dict(special_tokens)
        for role, tok in special_tokens.items():
            if role not in ROLES:
                raise ValueError(f"unknown special token role {role!r}; roles are {ROLES}")
            if tok is not None and tok not in self.vocab:
                raise ValueError(f"special token {tok!r} ({role}) is not in the vocabulary")
        self.special_tokens = {r: special_tokens.get(r) for r in ROLES}
        for tok in extra_special_tokens:
            if tok not in self.vocab:
                raise ValueError(f"special token {tok!r} is not in the vocabulary")
        self.extra_special_tokens = tuple(extra_special_tokens)
        self.template = template
        specials = [t for t in self.special_tokens.values() if t is not None]
        specials += [t for t in self.extra_special_tokens if t not in specials]
        self.all_special_tokens = tuple(dict.fromkeys(specials))
        self.all_special_ids = tuple(self.vocab[t] for t in self.all_special_tokens)
        self._special_id_set = frozenset(self.all_special_ids)
        # Longest first: Python's regex alternation takes the first alternative that
        # matches, which makes this a leftmost-longest match like HF's added-token matcher.
        by_length = sorted(self.all_special_tokens, key=len, reverse=True)
        self._special_re = (re.compile("(" + "|".join(map(re.escape, by_length)) + ")")
                            if by_length else None)

    # ----- vocabulary ---------------------------------------------------------------------

    @property
    def vocab_size(self):
        """Number of tokens, special ones included (ids are 0..vocab_size-1)."""
        return len(self.vocab)

    def __len__(self):
        return len(self.vocab)

    def get_vocab(self):
        """A copy of the ``token -> id`` mapping."""
        return dict(self.vocab)

    def token_to_id(self, token):
        """Id of ``token``; the [UNK] id if unknown (None when there is no unk_token)."""
        i = self.vocab.get(token)
        return self.unk_token_id if i is None else i

    def id_to_token(self, index):
        """Token string of ``index``; IndexError naming the vocabulary size if out of range."""
        index = int(index)
        if not 0 <= index < len(self.id_to_token_list):
            raise IndexError(f"token id {index} is out of range for a vocabulary of size "
                             f"{len(self.id_to_token_list)}")
        return self.id_to_token_list[index]

    def convert_tokens_to_ids(self, tokens):
        return [self.token_to_id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    def _role_id(self, role):
        tok = self.special_tokens[role]
        return None if tok is None else self.vocab[tok]

    pad_token_id = property(lambda self: self._role_id("pad_token"))
    unk_token_id = property(lambda self: self._role_id("unk_token"))
    cls_token_id = property(lambda self: self._role_id("cls_token"))
    sep_token_id = property(lambda self: self._role_id("sep_token"))
    mask_token_id = property(lambda self: self._role_id("mask_token"))
    bos_token_id = property(lambda self: self._role_id("bos_token"))
    eos_token_id = property(lambda self: self._role_id("eos_token"))

    def get_special_tokens_mask(self, ids):
        """int64 array, 1 where ``ids`` holds a special token, 0 elsewhere (any shape)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not self.all_special_ids:
            return np.zeros(ids.shape, dtype=np.int64)
        return np.isin(ids, np.array(self.all_special_ids, dtype=np.int64)).astype(np.int64)

    # ----- encoding -----------------------------------------------------------------------

    def _encode_chunk(self, text):
        raise NotImplementedError

    def _decode_ids(self, ids):
        raise NotImplementedError

    def tokenize(self, text):
        """The token strings of ``text`` (no template tokens added)."""
        return self.convert_ids_to_tokens(self.encode(text))

    def _template_ids(self, pair):
        """(prefix, middle, suffix) id lists that the template wraps around the text(s)."""
        if self.template == "none":
            return [], [], []
        if self.template == "bert":
            cls, sep = self.cls_token_id, self.sep_token_id
            if cls is None or sep is None:
                raise ValueError("template 'bert' needs both cls_token and sep_token")
            return [cls], ([sep] if pair else []), [sep]
        bos, eos = self.bos_token_id, self.eos_token_id
        if bos is None or eos is None:
            raise ValueError("template 'bos_eos' needs both bos_token and eos_token")
        return [bos], ([eos, bos] if pair else []), [eos]

    def encode(self, text, add_special_tokens=False):
        """Encode one string to a list of ids; ``add_special_tokens`` applies the template."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        ids = []
        pieces = self._special_re.split(text) if self._special_re is not None else [text]
        # re.split with one capture group alternates: text, special, text, special, ...
        for k, piece in enumerate(pieces):
            if k % 2 == 1:
                ids.append(self.vocab[piece])
            elif piece:
                ids.extend(self._encode_chunk(piece))
        if add_special_tokens:
            prefix, _, suffix = self._template_ids(pair=False)
            ids = prefix + ids + suffix
        return ids

    def _decode_pieces(self, ids, skip_special_tokens):
        """Decoded runs of ordinary ids and special token strings, in order."""
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        V = len(self.id_to_token_list)
        if arr.size and (arr.min() < 0 or arr.max() >= V):
            bad = int(arr[(arr < 0) | (arr >= V)][0])
            raise IndexError(f"token id {bad} is out of range for a vocabulary of size {V}")
        ids = arr.tolist()
        if self._special_id_set.isdisjoint(ids):          # the common case: one plain run
            return [self._decode_ids(ids)] if ids else []
        out, run = [], []
        for i in ids:
            if i in self._special_id_set:
                if run:
                    out.append(self._decode_ids(run))
                    run = []
                if not skip_special_tokens:
                    out.append(self.id_to_token_list[i])
            else:
                run.append(i)
        if run:
            out.append(self._decode_ids(run))
        return out

    def decode(self, ids, skip_special_tokens=False):
        """Ids (list or 1-D array) back to a string; special tokens are written as their text
        unless ``skip_special_tokens``. An out-of-range id is an IndexError."""
        return "".join(self._decode_pieces(ids, skip_special_tokens))

    def decode_batch(self, batch, skip_special_tokens=True):
        """Decode each row; padding and other special tokens are skipped by default."""
        return [self.decode(row, skip_special_tokens=skip_special_tokens) for row in batch]

    def encode_batch(self, texts, text_pairs=None, *, padding=True, truncation=False,
                     max_length=None, add_special_tokens=False, padding_side="right",
                     truncation_side="right", return_token_type_ids=False):
        """Encode a list of strings (or one string) into padded (B, T) int64 arrays.

        ``padding``: True/"longest" pads to the longest row, "max_length" to ``max_length``,
        False requires equal lengths. ``truncation=True`` cuts each row to ``max_length``
        ids, template tokens included (they are never cut). With ``text_pairs`` each row
        is ``A`` + ``B`` joined by the template (``[CLS] A [SEP] B [SEP]`` for "bert") and
        ``token_type_ids`` (0 for A, 1 for B, 0 for padding) can be returned.
        Returns a :class:`BatchEncoding` with ``input_ids`` and ``attention_mask``.
        """
        if isinstance(texts, str):
            texts = [texts]
            text_pairs = None if text_pairs is None else [text_pairs]
        texts = list(texts)
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(text_pairs)} text_pairs")
        if padding in (True, "longest"):
            padding = "longest"
        elif padding in (False, "do_not_pad"):
            padding = None
        elif padding != "max_length":
            raise ValueError(f"padding must be True, False, 'longest' or 'max_length', "
                             f"got {padding!r}")
        if (truncation or padding == "max_length") and max_length is None:
            raise ValueError("truncation=True and padding='max_length' need max_length")
        rows, types = [], []
        pair = text_pairs is not None
        prefix, middle, suffix = (self._template_ids(pair) if add_special_tokens
                                  else ([], [], []))
        n_special = len(prefix) + len(middle) + len(suffix)
        for k, text in enumerate(texts):
            a = self.encode(text)
            b = self.encode(text_pairs[k]) if pair else None
            if truncation:
                if max_length < n_special:
                    raise ValueError(f"max_length={max_length} cannot hold the {n_special} "
                                     "template tokens")
                a, b = truncate_pair(a, b, max_length - n_special, truncation_side)
            ids = prefix + a + middle
            tt = [0] * len(ids)
            if pair:
                ids = ids + b + suffix
                tt = tt + [1] * (len(b) + len(suffix))
            else:
                ids = ids + suffix
                tt = tt + [0] * len(suffix)
            rows.append(ids)
            types.append(tt)
        lengths = [len(r) for r in rows]
        if padding is None and len(set(lengths)) > 1:
            raise ValueError(f"rows have different lengths {lengths}; use padding=True")
        if padding == "max_length" and max(lengths, default=0) > max_length:
            raise ValueError(f"a row of length {max(lengths)} exceeds max_length={max_length}; "
                             "pass truncation=True")
        T = max_length if padding == "max_length" else None
        pad_id = self.pad_token_id
        needs_padding = len(set(lengths)) > 1 or (T is not None and min(lengths, default=T) < T)
        if needs_padding and pad_id is None:
            raise ValueError("padding needs a pad_token, and this tokenizer has none")
        input_ids, mask = pad_sequences(rows, 0 if pad_id is None else pad_id, max_length=T,
                                        padding_side=padding_side)
        out = BatchEncoding(input_ids=input_ids, attention_mask=mask)
        if return_token_type_ids:
            out["token_type_ids"], _ = pad_sequences(types, 0, max_length=T,
                                                     padding_side=padding_side)
        return out

    __call__ = encode_batch

    # ----- files --------------------------------------------------------------------------

    def _config(self):
        """JSON-serializable description (subclasses add their own fields)."""
        return {
            "type": self.kind, "format_version": FORMAT_VERSION,
            "special_tokens": self.special_tokens,
            "extra_special_tokens": list(self.extra_special_tokens),
            "template": self.template,
        }

    def save(self, path):
        """Write the tokenizer as one JSON file (atomically: temp file + rename)."""
        write_json_atomic(path, self._config())

    @classmethod
    def _from_config(cls, cfg):
        raise NotImplementedError

    @classmethod
    def load(cls, path):
        """Read a tokenizer written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        if cfg.get("type") != cls.kind:
            raise ValueError(f"{path} holds a {cfg.get('type')!r} tokenizer, not {cls.kind!r}")
        if cfg.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path} has format_version {cfg['format_version']}; this "
                             f"version of tinygrad_llm reads up to {FORMAT_VERSION}")
        return cls._from_config(cfg)

    def _base_kwargs(self):
        return dict(special_tokens=self.special_tokens,
                    extra_special_tokens=self.extra_special_tokens, template=self.template)

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, template={self.template!r})"


def truncate_pair(a, b, budget, side="right"):
    """Cut id lists ``a`` (and ``b``, may be None) to ``budget`` ids in total, one id at a time
    from the longer one (HF's "longest_first"); ``side`` says which end loses ids."""
    if side not in ("right", "left"):
        raise ValueError(f"truncation side must be 'right' or 'left', got {side!r}")
    a, b = list(a), (None if b is None else list(b))
    excess = len(a) + (len(b) if b is not None else 0) - budget
    for _ in range(max(0, excess)):
        victim = b if (b is not None and len(b) > len(a)) else a
        victim.pop(0 if side == "left" else -1)
    return a, b


def write_json_atomic(path, obj):
    """json.dump to ``path`` through a temporary file and ``os.replace`` (never half-written)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def build_vocab(special_tokens, extra_special_tokens, tokens):
    """``{token: id}``: special tokens first (role order), then ``tokens`` in order."""
    vocab = {}
    for tok in list((special_tokens or {}).values()) + list(extra_special_tokens):
        if tok is not None and tok not in vocab:
            vocab[tok] = len(vocab)
    for tok in tokens:
        if tok not in vocab:
            vocab[tok] = len(vocab)
    return vocab
