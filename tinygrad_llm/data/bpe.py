"""Byte-level BPE tokenizer, read and written in GPT-2's vocab.json + merges.txt format.

Encoding ``text``:

1. cut out special tokens (``<|endoftext|>``, [PAD], ...), each encodes to its own id;
2. split the rest with GPT-2's pre-tokenization regex (:mod:`.bytelevel`);
3. for each pre-token ("word"): take its UTF-8 bytes as GPT-2 byte characters, then, while
   some adjacent pair is in the merge table, merge every occurrence of the pair of lowest
   rank (rank = line number in merges.txt), left to right;
4. map the final symbols to ids through vocab.json.

Words repeat a lot (Zipf), so step 3 is cached per pre-token string: most words cost one
dict lookup. Decoding concatenates the bytes of each token and decodes UTF-8 with
``errors="replace"`` (GPT-2's choice, for ids that cut a character in half); for valid text
``decode(encode(s)) == s`` exactly.

Files: ``vocab.json`` (token -> id), ``merges.txt`` (``#version: 0.2`` then one ``left right``
pair per line), both exactly as GPT-2 and HF write them, plus our ``tokenizer_config.json``
holding the special-token roles. Plain GPT-2 files load too: ``<|endoftext|>`` is then the
bos, eos and unk token, as in HF's GPT-2 tokenizer.
"""
import json
import os
import re

from .bpe_train import train_bpe
from .bytelevel import bytes_to_token_str, bytes_to_unicode, gpt2_pretokenize, \
    token_str_to_bytes
from .tokenizer_base import DEFAULT_SPECIAL_TOKENS, FORMAT_VERSION, ROLES, Tokenizer, \
    write_json_atomic

ENDOFTEXT = "<|endoftext|>"
_CACHE_LIMIT = 1 << 18            # cached words; the cache is cleared when it fills up
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_utf8(texts, error):
    """A UnicodeEncodeError that names where in ``texts`` the lone surrogate is (the one
    from ``str.encode`` gives a position inside one pre-token)."""
    for k, text in enumerate(texts):
        m = _SURROGATE.search(text)
        if m is not None:
            where = f" of text {k}" if len(texts) > 1 else ""
            return UnicodeEncodeError(
                "utf-8", text, m.start(), m.end(),
                f"a lone surrogate (U+{ord(m.group()):04X}) at index {m.start()}{where} has no "
                f"UTF-8 bytes; byte-level BPE needs valid Unicode text")
    return error


class ByteLevelBPETokenizer(Tokenizer):
    """GPT-2 style byte-level BPE.

    ``vocab`` maps token strings (in GPT-2's byte characters) to ids and must contain all
    256 single-byte tokens; ``merges`` is the list of ``(left, right)`` pairs in rank order.
    """

    kind = "byte_bpe"

    def __init__(self, vocab, merges, special_tokens=None, extra_special_tokens=(),
                 template="none"):
        super().__init__(vocab, special_tokens, extra_special_tokens, template)
        missing = [c for c in bytes_to_unicode().values() if c not in self.vocab]
        if missing:
            raise ValueError(f"vocab lacks {len(missing)} of the 256 byte tokens, e.g. "
                             f"{missing[0]!r}")
        self.merges = [tuple(m) for m in merges]
        self.bpe_ranks = {}
        for rank, (a, b) in enumerate(self.merges):
            for part in (a, b, a + b):
                if part not in self.vocab:
                    raise ValueError(f"merge {rank} ({a!r} {b!r}) uses {part!r}, which is "
                                     "not in the vocab")
            self.bpe_ranks.setdefault((a, b), rank)
        specials = set(self.all_special_tokens)
        self._id_bytes = [tok.encode("utf-8") if tok in specials else token_str_to_bytes(tok)
                          for tok in self.id_to_token_list]
        self._cache = {}

    # ----- construction -------------------------------------------------------------------

    @classmethod
    def train(cls, texts, vocab_size, *, min_frequency=2, special_tokens=None,
              extra_special_tokens=(ENDOFTEXT,), template="none", verbose=False):
        """Learn a vocabulary of ``vocab_size`` tokens from a string or iterable of strings.

        Ids: 0..255 the bytes in GPT-2's order, then the merged tokens in the order they were
        learned, then the special tokens (the default 7 roles and ``<|endoftext|>``), last
        as GPT-2's ``<|endoftext|>`` (50256) is.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        special_tokens = dict(DEFAULT_SPECIAL_TOKENS if special_tokens is None
                              else special_tokens)
        specials = [t for t in special_tokens.values() if t is not None]
        specials = list(dict.fromkeys(specials + list(extra_special_tokens)))
        try:
            tokens, merges = train_bpe(texts, vocab_size, min_frequency=min_frequency,
                                       special_tokens=specials, verbose=verbose)
        except UnicodeEncodeError as e:
            raise _no_utf8(texts, e) from None
        vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
        for tok in tokens + specials:
            vocab.setdefault(tok, len(vocab))
        return cls(vocab, merges, special_tokens, extra_special_tokens, template)

    @classmethod
    def from_files(cls, vocab_file, merges_file, special_tokens=None,
                   extra_special_tokens=None, template="none"):
        """Read GPT-2's vocab.json and merges.txt.

        Without ``special_tokens``, ``<|endoftext|>`` (if present) becomes the bos, eos and
        unk token, like HF's GPT-2 tokenizer.
        """
        with open(vocab_file, encoding="utf-8") as f:
            vocab = json.load(f)
        merges = read_merges(merges_file)
        if special_tokens is None:
            special_tokens = ({"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT,
                               "unk_token": ENDOFTEXT} if ENDOFTEXT in vocab else {})
        if extra_special_tokens is None:
            extra_special_tokens = (ENDOFTEXT,) if ENDOFTEXT in vocab else ()
        return cls(vocab, merges, special_tokens, extra_special_tokens, template)

    def save(self, directory):
        """Write ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json`` into
        ``directory`` (created if needed). Returns the three paths."""
        os.makedirs(directory, exist_ok=True)
        paths = [os.path.join(directory, n)
                 for n in ("vocab.json", "merges.txt", "tokenizer_config.json")]
        vocab = {tok: i for i, tok in enumerate(self.id_to_token_list)}
        write_json_atomic(paths[0], vocab)
        write_merges(paths[1], self.merges)
        write_json_atomic(paths[2], self._config())
        return paths

    @classmethod
    def load(cls, directory):
        """Read a directory written by :meth:`save` (or holding plain GPT-2 files)."""
        vocab_file = os.path.join(directory, "vocab.json")
        merges_file = os.path.join(directory, "merges.txt")
        config_file = os.path.join(directory, "tokenizer_config.json")
        if not os.path.exists(config_file):
            return cls.from_files(vocab_file, merges_file)
        with open(config_file, encoding="utf-8") as f:
            cfg = json.load(f)
        if cfg.get("type") != cls.kind:
            raise ValueError(f"{config_file} describes a {cfg.get('type')!r} tokenizer, "
                             f"not {cls.kind!r}")
        if cfg.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{config_file} has format_version {cfg['format_version']}; "
                             f"this version reads up to {FORMAT_VERSION}")
        special_tokens = {r: cfg["special_tokens"].get(r) for r in ROLES}
        return cls.from_files(vocab_file, merges_file, special_tokens,
                              tuple(cfg["extra_special_tokens"]), cfg["template"])

    # ----- encoding -----------------------------------------------------------------------

    def bpe(self, word):
        """Token strings of one pre-token (raw text) after applying the merges by rank."""
        symbols = list(bytes_to_token_str(word.encode("utf-8")))
        ranks = self.bpe_ranks
        missing = len(ranks) + 1
        while len(symbols) > 1:
            pairs = list(zip(symbols, symbols[1:]))
            best = min(pairs, key=lambda p: ranks.get(p, missing))
            if best not in ranks:
                break
            a, b = best
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def encode(self, text, add_special_tokens=False):
        try:
            return super().encode(text, add_special_tokens)
        except UnicodeEncodeError as e:
            raise _no_utf8([text], e) from None

    encode.__doc__ = Tokenizer.encode.__doc__

    def _encode_chunk(self, text):
        cache, vocab = self._cache, self.vocab
        ids = []
        for word in gpt2_pretokenize(text):
            word_ids = cache.get(word)
            if word_ids is None:
                word_ids = [vocab[s] for s in self.bpe(word)]
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[word] = word_ids
            ids.extend(word_ids)
        return ids

    def _decode_ids(self, ids):
        id_bytes = self._id_bytes
        return b"".join([id_bytes[i] for i in ids]).decode("utf-8", errors="replace")

    def decode_bytes(self, ids):
        """The raw bytes of ``ids`` (special tokens as their UTF-8 text)."""
        return b"".join(self._id_bytes[int(i)] for i in ids)

    def _config(self):
        return super()._config() | {"num_merges": len(self.merges)}


def read_merges(path):
    """Read merges.txt: an optional ``#version`` line, then ``left right`` per line."""
    merges = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line or (lineno == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'left right', got {line!r}")
            merges.append((parts[0], parts[1]))
    return merges


def write_merges(path, merges):
    """Write merges.txt in GPT-2's format (atomically)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    os.replace(tmp, path)
