"""Text generation: picking the next token from logits, the decoding loop, and beam search.

Shapes: B batch, V vocabulary, T sequence length.

Decoding strategies for p(next | prefix) = softmax(logits / temperature):
    greedy       argmax of the logits (temperature 0, or do_sample=False)
    temperature  divide the logits by T before the softmax: T < 1 sharpens, T > 1 flattens
    top-k        keep the k most likely tokens, renormalise
    top-p        keep the smallest set of most likely tokens whose probability adds up to p
                 (nucleus sampling), renormalise
Sampling draws u ~ U[0, 1) from a seeded generator and takes the first token whose cumulative
probability exceeds u, so the same seed gives the same text. ``suppress_tokens`` (ids) get
logit -inf before any of these, so they are never chosen, greedy included: the CLI masks the
tokenizer's special tokens ([CLS], [PAD], ...) that the model never saw as text.

Models plug in through one function, ``step(new_ids, cache) -> (logits, cache)``: it takes the
tokens not yet seen (B, t) and whatever cache it returned last time (None at first), and returns
the logits of the last position (B, V). A model with a KV cache feeds only the new token;
without one it re-reads the whole prefix. Both must produce the same tokens.
"""
import numpy as np

from .backend import to_numpy
from .creation import Generator


def _rng(generator):
    if generator is None:
        return np.random.default_rng(0)
    if isinstance(generator, Generator):
        return generator.rng
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(int(generator))


def filter_logits(logits, top_k=None, top_p=None):
    """Set the logits of tokens outside the top-k / top-p set to -inf.  logits: (B, V)."""
    logits = np.array(logits, dtype=np.float64)
    V = logits.shape[-1]
    if top_k is not None and 0 < top_k < V:
        kth = np.partition(logits, V - top_k, axis=-1)[:, V - top_k:V - top_k + 1]  # (B, 1)
        logits = np.where(logits < kth, -np.inf, logits)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")                # (B, V) best first
        sorted_logits = np.take_along_axis(logits, order, axis=-1)
        probs = np.exp(sorted_logits - sorted_logits[:, :1])
        probs /= probs.sum(-1, keepdims=True)
        mass_before = np.cumsum(probs, axis=-1) - probs  # probability of the better tokens
        drop_sorted = mass_before >= top_p                 # the best token is always kept
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        logits = np.where(drop, -np.inf, logits)
    return logits


def _suppress_ids(suppress_tokens, V):
    """``suppress_tokens`` as an int64 array of ids in [0, V); ValueError names a bad one."""
    ids = np.unique(np.asarray(list(suppress_tokens), dtype=np.int64).reshape(-1))
    bad = ids[(ids < 0) | (ids >= V)]
    if bad.size:
        raise ValueError(f"suppress_tokens holds id {int(bad[0])}, outside the vocabulary of "
                         f"size {V}")
    if ids.size >= V:
        raise ValueError(f"suppress_tokens masks all {V} tokens: nothing is left to generate")
    return ids


def suppress_logits(logits, suppress_tokens):
    """A float64 copy of logits (B, V) with the ``suppress_tokens`` columns set to -inf."""
    logits = np.array(logits, dtype=np.float64)
    logits[:, _suppress_ids(suppress_tokens, logits.shape[-1])] = -np.inf
    return logits


def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, do_sample=True,
                      generator=None, suppress_tokens=None):
    """The next token for each row of logits (B, V) -> int64 (B,); ``suppress_tokens`` (ids)
    are never chosen."""
    logits = to_numpy(logits)
    if logits.ndim == 1:
        logits = logits[None]
    if suppress_tokens is not None and len(suppress_tokens):
        logits = suppress_logits(logits, suppress_tokens)
    if not do_sample or temperature == 0:
        return np.argmax(logits, axis=-1).astype(np.int64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = filter_logits(logits / temperature, top_k, top_p)
    probs = np.exp(logits - logits.max(-1, keepdims=True))                 # (B, V)
    cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), axis=-1)
    u = _rng(generator).random((logits.shape[0], 1))
    return np.minimum((cdf <= u).sum(-1), logits.shape[-1] - 1).astype(np.int64)


def decode_loop(step, prompt_ids, max_new_tokens, *, temperature=1.0, top_k=None, top_p=None,
                do_sample=True, generator=None, eos_token_id=None, stream=None,
                suppress_tokens=None):
    """Extend prompt_ids (B, T) by up to max_new_tokens tokens; returns (B, T + n) int64.

    ``stream(tokens)`` is called with each new (B,) array as soon as it is chosen. Rows that
    produced ``eos_token_id`` keep emitting it; the loop stops when every row has.
    ``suppress_tokens``: ids that are never generated (their logits are set to -inf); leave
    ``eos_token_id`` out of them, or generation can never stop early.
    """
    ids = np.asarray(prompt_ids, dtype=np.int64)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.shape[1] == 0:
        raise ValueError("generation needs a prompt of at least one token")
    rng = _rng(generator)
    cache, new = None, ids
    done = np.zeros(ids.shape[0], dtype=bool)
    for _ in range(max_new_tokens):
        logits, cache = step(new, cache)
        nxt = sample_next_token(logits, temperature, top_k, top_p, do_sample, rng,
                                suppress_tokens)
        if eos_token_id is not None:
            nxt = np.where(done, eos_token_id, nxt)
            done |= nxt == eos_token_id
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
        new = nxt[:, None]
        if stream is not None:
            stream(nxt)
        if eos_token_id is not None and done.all():
            break
    return ids


def beam_search(step, bos_ids, max_new_tokens, *, beam_size=4, eos_token_id=None,
                length_penalty=1.0):
    """Beam search for one sequence: keep the ``beam_size`` prefixes of highest total log-prob.

    ``step(prefixes (K, t)) -> log-probabilities of the next token (K, V)`` (no cache: simple and
    exact). A hypothesis that emits eos is finished and scored by
    sum log p / length^length_penalty (Wu et al. 2016 without the constant). The search goes on
    while some active beam can still win: with length_penalty 0 it stops as soon as the best
    finished score beats every active beam (their sums can only fall); otherwise it runs until
    every beam has finished or max_new_tokens is reached. Unfinished beams are returned only
    when nothing finished. Returns the best sequence as a list of ids (bos_ids included).
    """
    n0 = len(bos_ids)

    def normalized(seq, score):
        return score / max(len(seq) - n0, 1) ** length_penalty

    beams = [(list(bos_ids), 0.0)]
    finished = []
    for _ in range(max_new_tokens):
        prefixes = np.array([b[0] for b in beams], dtype=np.int64)
        logp = np.asarray(to_numpy(step(prefixes)), dtype=np.float64)         # (K, V)
        candidates = []
        for k, (seq, score) in enumerate(beams):
            best = np.argsort(-logp[k], kind="stable")[:beam_size]
            for tok in best:
                candidates.append((seq + [int(tok)], score + float(logp[k, tok])))
        candidates.sort(key=lambda c: -c[1])
        beams = []
        for seq, score in candidates:
            if eos_token_id is not None and seq[-1] == eos_token_id:
                finished.append((seq, normalized(seq, score)))
            else:
                beams.append((seq, score))
            if len(beams) == beam_size:
                break
        if not beams:
            break
        if finished and length_penalty == 0 and \
                max(f[1] for f in finished) >= max(b[1] for b in beams):
            break  # no active beam can overtake the best finished one any more
    if not finished:
        finished = [(seq, normalized(seq, score)) for seq, score in beams]
    return max(finished, key=lambda c: c[1])[0]
