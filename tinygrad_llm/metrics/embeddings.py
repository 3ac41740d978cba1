"""Embedding-space metrics: cosine similarity, nearest neighbours, word analogies.

Shapes: V vocabulary rows, D embedding size.

    cos(u, v) = u . v / (|u| |v|)          (0 when either vector is zero)

Analogies (3CosAdd, Mikolov et al. 2013), "a - b + c": with unit vectors ``û = u / |u|``,

    answer = argmax_w cos(E_w, ê_a - ê_b + ê_c)      over all w not in {a, b, c}

so ``analogy(E, king, man, woman)`` -> queen ("man is to king as woman is to ?").
:func:`most_similar` is the general form with lists of positive and negative words, like
gensim's ``most_similar``.
"""
import numpy as np


def _unit_rows(x, eps=1e-12):
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def cosine_similarity(a, b=None):
    """Cosine similarity. Vectors (D,) and (D,) give a float; matrices (N, D) and (M, D)
    give the (N, M) matrix of all pairs; ``b=None`` compares ``a`` with itself."""
    a = np.asarray(a, dtype=np.float64)
    b = a if b is None else np.asarray(b, dtype=np.float64)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"vectors of size {a.shape[-1]} and {b.shape[-1]} cannot be compared")
    if a.ndim > 2 or b.ndim > 2:
        raise ValueError(f"expected vectors or matrices, got shapes {a.shape} and {b.shape}")
    sim = _unit_rows(a) @ _unit_rows(b).T
    return float(sim) if sim.ndim == 0 else sim


def _index(embeddings, key, vocab):
    """Row index of ``key``: an int, or a word looked up in ``vocab`` (dict or tokenizer)."""
    if isinstance(key, str):
        if vocab is None:
            raise ValueError(f"got the word {key!r} but no vocab to look it up")
        lookup = vocab.get_vocab() if hasattr(vocab, "get_vocab") else vocab
        if key not in lookup:
            raise KeyError(f"{key!r} is not in the vocabulary")
        key = lookup[key]
    key = int(key)
    if not 0 <= key < len(embeddings):
        raise IndexError(f"index {key} is out of range for {len(embeddings)} embeddings")
    return key


def _top_k(scores, k, exclude):
    scores = scores.copy()
    if exclude:
        scores[list(exclude)] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argsort(-scores, kind="stable")[:k]
    return top.astype(np.int64), scores[top]


def nearest_neighbors(embeddings, query, k=5, *, exclude=(), vocab=None):
    """The ``k`` rows most cosine-similar to ``query`` (an index, a word with ``vocab``, or
    a (D,) vector). Returns ``(indices, similarities)``, best first; a query given as an
    index/word is excluded from its own neighbours, as is every index in ``exclude``."""
    E = np.asarray(embeddings, dtype=np.float64)
    if E.ndim != 2:
        raise ValueError(f"embeddings must be a (V, D) matrix, got shape {E.shape}")
    excluded = {_index(E, e, vocab) for e in exclude}
    if isinstance(query, (str, int, np.integer)):
        q = _index(E, query, vocab)
        excluded.add(q)
        vector = E[q]
    else:
        vector = np.asarray(query, dtype=np.float64)
        if vector.shape != (E.shape[1],):
            raise ValueError(f"query vector shape {vector.shape} != ({E.shape[1]},)")
    scores = _unit_rows(E) @ _unit_rows(vector)                             # (V,)
    return _top_k(scores, k, excluded)


def most_similar(embeddings, positive, negative=(), k=1, *, vocab=None,
                 exclude_query=True):
    """Rows closest (cosine) to ``sum(ê_p for p in positive) - sum(ê_n for n in negative)``;
    the query words are excluded from the answers (``exclude_query``), as in word2vec's
    evaluation. Returns ``(indices, similarities)``, best first."""
    E = np.asarray(embeddings, dtype=np.float64)
    if E.ndim != 2:
        raise ValueError(f"embeddings must be a (V, D) matrix, got shape {E.shape}")
    pos = [_index(E, p, vocab) for p in positive]
    neg = [_index(E, n, vocab) for n in negative]
    if not pos:
        raise ValueError("most_similar needs at least one positive word")
    U = _unit_rows(E)
    target = U[pos].sum(axis=0) - (U[neg].sum(axis=0) if neg else 0.0)       # (D,)
    scores = U @ _unit_rows(target)                                          # (V,)
    return _top_k(scores, k, set(pos + neg) if exclude_query else set())


def analogy(embeddings, a, b, c, k=1, *, vocab=None):
    """The ``k`` words closest to ``a - b + c`` (unit vectors), excluding a, b and c:
    ``analogy(E, "king", "man", "woman", vocab=vocab)`` -> queen.
    Returns ``(indices, similarities)``."""
    return most_similar(embeddings, positive=(a, c), negative=(b,), k=k, vocab=vocab)
