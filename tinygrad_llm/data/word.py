"""Word-level tokenizer with a vocabulary built from a corpus.

Text is split by a regular expression (default ``\\w+|[^\\w\\s]``: runs of word characters,
and each punctuation mark on its own) after optional lowercasing. The vocabulary is the
special tokens followed by the words seen at least ``min_freq`` times, most frequent first
(ties alphabetical), capped at ``max_size`` entries in total. Unknown words map to [UNK].

Decoding joins tokens with single spaces, so it is lossy: "Hello, world!" encodes and
decodes to "hello , world !".
"""
import re
from collections import Counter

from .tokenizer_base import DEFAULT_SPECIAL_TOKENS, Tokenizer, build_vocab

DEFAULT_PATTERN = r"\w+|[^\w\s]"


class WordTokenizer(Tokenizer):
    """Word tokenizer over an explicit word list (see :meth:`from_corpus` to build one)."""

    kind = "word"

    def __init__(self, words, special_tokens=None, extra_special_tokens=(),
                 template="bos_eos", lowercase=True, pattern=DEFAULT_PATTERN):
        special_tokens = dict(DEFAULT_SPECIAL_TOKENS if special_tokens is None
                              else special_tokens)
        vocab = build_vocab(special_tokens, extra_special_tokens, words)
        super().__init__(vocab, special_tokens, extra_special_tokens, template)
        self.words = [w for w in dict.fromkeys(words)]
        self.lowercase = lowercase
        self.pattern = pattern
        self._split = re.compile(pattern)

    def split_words(self, text):
        """The words of ``text`` as this tokenizer sees them (lowercased, split)."""
        if self.lowercase:
            text = text.lower()
        return self._split.findall(text)

    @classmethod
    def from_corpus(cls, texts, *, min_freq=1, max_size=None, special_tokens=None,
                    extra_special_tokens=(), template="bos_eos", lowercase=True,
                    pattern=DEFAULT_PATTERN):
        """Count the words of a string or iterable of strings and keep the frequent ones.

        ``max_size`` caps the vocabulary, special tokens included.
        """
        probe = cls([], special_tokens, extra_special_tokens, template, lowercase, pattern)
        counts = Counter()
        for text in ([texts] if isinstance(texts, str) else texts):
            counts.update(probe.split_words(text))
        n_special = len(probe.vocab)
        if max_size is not None and max_size < n_special:
            raise ValueError(f"max_size={max_size} is smaller than the {n_special} special "
                             "tokens")
        ranked = sorted((w for w, n in counts.items() if n >= min_freq and w not in probe.vocab),
                        key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[:max_size - n_special]
        return cls(ranked, probe.special_tokens, extra_special_tokens, template, lowercase,
                   pattern)

    def _encode_chunk(self, text):
        vocab, unk = self.vocab, self.unk_token_id
        words = self.split_words(text)
        if unk is None:
            missing = [w for w in words if w not in vocab]
            if missing:
                raise ValueError(f"word {missing[0]!r} is not in the vocabulary and this "
                                 "tokenizer has no unk_token")
        return [vocab.get(w, unk) for w in words]

    def _decode_ids(self, ids):
        return " ".join(self.id_to_token_list[i] for i in ids)

    def decode(self, ids, skip_special_tokens=False):
        """Join the tokens of ``ids`` with single spaces (lossy, see the module docstring)."""
        return " ".join(self._decode_pieces(ids, skip_special_tokens))

    def _config(self):
        return super()._config() | {"words": self.words, "lowercase": self.lowercase,
                                    "pattern": self.pattern}

    @classmethod
    def _from_config(cls, cfg):
        return cls(cfg["words"], cfg["special_tokens"], tuple(cfg["extra_special_tokens"]),
                   cfg["template"], cfg["lowercase"], cfg["pattern"])
