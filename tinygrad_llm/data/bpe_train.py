"""Training byte-level BPE merges (Sennrich et al. 2016, on bytes as in GPT-2).

Algorithm:

1. Pre-tokenize every text with GPT-2's regex (special tokens are cut out first and never
   merged) and count each distinct pre-token ("word"); a word is the sequence of its UTF-8
   bytes, each shown as one of GPT-2's 256 byte characters.
2. Count every adjacent symbol pair, weighted by word frequency: ``count(x, y) = sum over
   words w of freq(w) * #{i : w[i] = x, w[i+1] = y}``.
3. Repeatedly take the most frequent pair, add the merged symbol ``xy`` to the vocabulary,
   and replace ``x y`` by ``xy`` (left to right, non-overlapping) in every word holding it.
   Stop at ``vocab_size`` tokens or when the best count falls below ``min_frequency``.

Only the words that contain the merged pair are touched (an index ``pair -> words``), and
the best pair comes from a max-heap whose stale entries are re-checked when popped, so a
merge costs time proportional to the words it changes, not to the corpus.

Ties are broken the way HF ``tokenizers``' ``BpeTrainer`` breaks them: the smaller pair of
ids wins, where byte characters are numbered in code-point order and merged tokens in
creation order. So on the same corpus this trainer produces the same merges as
``tokenizers.ByteLevelBPETokenizer.train`` (see ``tests/test_tokenizers.py``).
"""
import heapq
import re
from collections import Counter

from .bytelevel import bytes_to_token_str, bytes_to_unicode, gpt2_pretokenize


def count_words(texts, special_tokens=()):
    """Counter of GPT-2 pre-tokens (raw text) over an iterable of texts, specials cut out."""
    by_length = sorted(set(special_tokens), key=len, reverse=True)
    splitter = re.compile("|".join(map(re.escape, by_length))) if by_length else None
    counts = Counter()
    for text in texts:
        for chunk in (splitter.split(text) if splitter is not None else [text]):
            if chunk:
                counts.update(gpt2_pretokenize(chunk))
    return counts


def train_bpe(texts, vocab_size, *, min_frequency=2, special_tokens=(), verbose=False):
    """Learn byte-level BPE merges from an iterable of texts.

    ``vocab_size`` counts the 256 byte tokens, the merged tokens and ``special_tokens``.
    Returns ``(tokens, merges)``: the learned tokens in creation order (bytes not included)
    and the merges as ``(left, right)`` token-string pairs in rank order.
    """
    specials = list(dict.fromkeys(special_tokens))
    if vocab_size < 256 + len(specials):
        raise ValueError(f"vocab_size={vocab_size} cannot hold the 256 byte tokens and "
                         f"{len(specials)} special tokens")
    word_counts = count_words(texts, specials)

    # Internal ids follow HF's trainer (alphabet sorted by code point, then merged tokens)
    # so that ties between equally frequent pairs are broken exactly as HF breaks them.
    alphabet = sorted(bytes_to_unicode().values())
    symbols = list(alphabet)                       # internal id -> token string
    symbol_id = {c: i for i, c in enumerate(alphabet)}
    words, freqs = [], []
    for piece, n in word_counts.items():
        words.append([symbol_id[c] for c in bytes_to_token_str(piece.encode("utf-8"))])
        freqs.append(n)

    pair_counts, where = {}, {}
    for wi, (w, n) in enumerate(zip(words, freqs)):
        for p in zip(w, w[1:]):
            pair_counts[p] = pair_counts.get(p, 0) + n
            where.setdefault(p, set()).add(wi)
    heap = [(-c, a, b) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)

    merges = []
    target = vocab_size - len(specials)
    while len(symbol_id) < target and heap:
        neg_count, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count != -neg_count:                  # stale entry: re-queue with its true count
            if count > 0:
                heapq.heappush(heap, (-count, a, b))
            continue
        if count < max(min_frequency, 1):
            break
        merged = symbols[a] + symbols[b]
        new = symbol_id.get(merged)
        if new is None:                          # two merges may spell the same token
            new = symbol_id[merged] = len(symbols)
            symbols.append(merged)
        merges.append((symbols[a], symbols[b]))
        grown = set()
        for wi in where.pop((a, b), ()):
            w = words[wi]
            out, i, found = [], 0, False
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                    found = True
                else:
                    out.append(w[i])
                    i += 1
            if not found:                        # the index keeps words that lost the pair
                continue
            delta = {}
            for p in zip(w, w[1:]):
                delta[p] = delta.get(p, 0) - 1
            for p in zip(out, out[1:]):
                delta[p] = delta.get(p, 0) + 1
            n = freqs[wi]
            for p, d in delta.items():
                if d:
                    pair_counts[p] = pair_counts.get(p, 0) + d * n
                    if d > 0:
                        where.setdefault(p, set()).add(wi)
                        grown.add(p)
            words[wi] = out
        pair_counts.pop((a, b), None)
        for p in grown:
            c = pair_counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p[0], p[1]))
        if verbose and len(merges) % 1000 == 0:
            print(f"bpe: {len(merges)} merges, last {merges[-1]!r} x{count}")
    return symbols[256:], merges
