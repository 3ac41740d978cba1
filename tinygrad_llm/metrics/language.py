"""Perplexity: how surprised a language model is by held-out text.

For tokens w_1..w_N and model probabilities p(w_i | w_<i):

    NLL = -(1/N) sum_i log p(w_i | w_<i)        (mean negative log-likelihood, in nats)
    PPL = exp(NLL)                              (= 2 ** (NLL / ln 2) in bits)

A uniform model over V tokens has PPL = V; a perfect one has PPL = 1. Perplexities are only
comparable between models with the same tokenizer (they are "per token").
"""
import math

import numpy as np


def perplexity(mean_nll):
    """``exp(mean_nll)`` from a mean cross-entropy loss in nats (e.g. a GPT's eval loss)."""
    mean_nll = float(mean_nll)
    if math.isnan(mean_nll) or mean_nll < 0:
        raise ValueError(f"mean NLL must be a non-negative number, got {mean_nll}")
    return math.exp(mean_nll) if mean_nll < 709.0 else math.inf    # exp(709.8) overflows


def perplexity_from_log_probs(log_probs, mask=None):
    """``exp(-(1/N) sum_i log p_i)`` from per-token log-probabilities (natural log).

    ``mask`` (same shape, 1 = count the token) leaves out padding; N = number counted.
    Sums are taken in float64.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != lp.shape:
            raise ValueError(f"mask shape {mask.shape} != log_probs shape {lp.shape}")
        lp = lp[mask]
    if lp.size == 0:
        raise ValueError("perplexity of zero tokens is undefined")
    if (lp > 0).any():
        raise ValueError(f"log-probabilities must be <= 0, got a maximum of {lp.max()}")
    return perplexity(-lp.mean())


def token_log_probs(logits, targets):
    """log softmax(logits)[..., target] for logits (..., V) and integer targets (...).

    Stable: ``log p_t = z_t - m - log sum_j exp(z_j - m)`` with m = max_j z_j, in float64.
    """
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(targets)
    if z.shape[:-1] != t.shape:
        raise ValueError(f"logits shape {z.shape} needs targets of shape {z.shape[:-1]}, got "
                         f"{t.shape}")
    if t.size and (t.min() < 0 or t.max() >= z.shape[-1]):
        raise IndexError(f"targets must lie in [0, {z.shape[-1]}), got range "
                         f"[{t.min()}, {t.max()}]")
    m = z.max(axis=-1, keepdims=True)
    log_norm = m[..., 0] + np.log(np.exp(z - m).sum(axis=-1))
    return np.take_along_axis(z, t[..., None], axis=-1)[..., 0] - log_norm


def perplexity_from_logits(logits, targets, ignore_index=-100):
    """Perplexity of ``targets`` under ``softmax(logits)``; targets equal to
    ``ignore_index`` (padding) are not counted."""
    t = np.asarray(targets)
    keep = t != ignore_index
    lp = token_log_probs(logits, np.where(keep, t, 0))
    return perplexity_from_log_probs(lp, keep)
