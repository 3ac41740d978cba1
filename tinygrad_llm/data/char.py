"""Character-level tokenizer: one token per Unicode character (code point).

The vocabulary is the special tokens (ids 0..6 by default: [PAD] [UNK] [CLS] [SEP] [MASK]
<bos> <eos>) followed by the characters in code-point order, as in nanoGPT's
``sorted(set(text))``. A character outside the vocabulary encodes to [UNK]; decoding is
exact for every known character, so ``decode(encode(s)) == s`` when all of s is known.
"""
from collections import Counter

from .tokenizer_base import DEFAULT_SPECIAL_TOKENS, Tokenizer, build_vocab


def _iter_texts(texts):
    if isinstance(texts, str):
        return [texts]
    return texts


class CharTokenizer(Tokenizer):
    """Character tokenizer over an explicit character set.

    >>> tok = CharTokenizer("abc")
    >>> tok.encode("abcz")        # z is unknown -> [UNK] (id 1)
    [7, 8, 9, 1]
    """

    kind = "char"

    def __init__(self, chars, special_tokens=None, extra_special_tokens=(),
                 template="bos_eos"):
        special_tokens = dict(DEFAULT_SPECIAL_TOKENS if special_tokens is None
                              else special_tokens)
        chars = list(dict.fromkeys(chars))
        for c in chars:
            if len(c) != 1:
                raise ValueError(f"CharTokenizer tokens must be single characters, got {c!r}")
        vocab = build_vocab(special_tokens, extra_special_tokens, chars)
        super().__init__(vocab, special_tokens, extra_special_tokens, template)
        self.chars = [c for c in chars if c in vocab]

    @classmethod
    def from_corpus(cls, texts, *, min_freq=1, max_size=None, special_tokens=None,
                    extra_special_tokens=(), template="bos_eos"):
        """Build the character set from a string or an iterable of strings.

        Characters seen fewer than ``min_freq`` times are left out (they become [UNK]).
        ``max_size`` caps the whole vocabulary, special tokens included, keeping the most
        frequent characters (ties broken by code point).
        """
        counts = Counter()
        for text in _iter_texts(texts):
            counts.update(text)
        special_tokens = dict(DEFAULT_SPECIAL_TOKENS if special_tokens is None
                              else special_tokens)
        n_special = len(build_vocab(special_tokens, extra_special_tokens, []))
        kept = [c for c, n in counts.items() if n >= min_freq]
        if max_size is not None:
            if max_size < n_special:
                raise ValueError(f"max_size={max_size} is smaller than the {n_special} "
                                 "special tokens")
            kept = sorted(kept, key=lambda c: (-counts[c], c))[:max_size - n_special]
        return cls(sorted(kept), special_tokens, extra_special_tokens, template)

    def _encode_chunk(self, text):
        vocab, unk = self.vocab, self.unk_token_id
        if unk is None:
            missing = [c for c in text if c not in vocab]
            if missing:
                raise ValueError(f"character {missing[0]!r} is not in the vocabulary and this "
                                 "tokenizer has no unk_token")
        return [vocab.get(c, unk) for c in text]

    def _decode_ids(self, ids):
        return "".join(self.id_to_token_list[i] for i in ids)

    def _config(self):
        return super()._config() | {"chars": self.chars}

    @classmethod
    def _from_config(cls, cfg):
        return cls(cfg["chars"], cfg["special_tokens"], tuple(cfg["extra_special_tokens"]),
                   cfg["template"])
