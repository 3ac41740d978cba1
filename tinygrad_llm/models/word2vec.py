"""word2vec skip-gram models: seed 000's cosine-embedding model and negative sampling (SGNS).

Shapes: N pairs in a batch, K negatives per pair, V vocabulary, D embedding size.

1. ``Word2Vec``: seed 000's PyTorch code, one embedding table for context and target,

       loss = CosineEmbeddingLoss(E[context], E[target], y)
       l = 1 - cos(E[c], E[t])          y = +1: a (center, context) pair seen in the text
       l = max(0, cos(E[c], E[t]))      y = -1: a (center, random word) pair (margin 0)

   The seed trains with y = +1 only (``torch.ones(context.size(0))``). That loss has a
   trivial minimum: all vectors pointing the same way make every cosine 1 and the loss 0,
   whatever the text says, so training drifts towards it (the vectors "collapse": every
   cosine approaches 1 and similarity stops telling related words from unrelated ones).
   Sampled negatives with y = -1 push random pairs to cosine <= 0, which rules the collapsed
   solution out: the vectors must spread over the sphere, and only words that share contexts
   stay close. ``examples/word2vec.py --collapse`` shows the difference.

2. ``SkipGramNegativeSampling``: Mikolov et al. (2013), two tables, center vectors v = W_in[w]
   and context vectors u = W_out[w], and the loss (``losses.negative_sampling_loss``)

       l = -log s(u_o . v_c) - sum_{k=1..K} log s(-u_k . v_c),   s = sigmoid,
       negatives w_k ~ P(w) = count(w)^0.75 / sum_v count(v)^0.75

   which is the log-likelihood of telling the real context word o from K noise words.
   ``W_in`` holds the word vectors; W_out starts at zero (word2vec's initialisation).
"""
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..creation import Generator
from ..losses import cosine_embedding_loss, negative_sampling_loss
from ..tensor import Tensor


@dataclass
class Word2VecConfig:
    vocab_size: int = 1000       # V: words in the vocabulary
    embedding_dim: int = 50      # D: size of each word vector


def _ids(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.int64))


class Word2Vec(nn.Module):
    """Seed 000's model: one table, forward(context, target) -> (E[context], E[target])."""

    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else Word2VecConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_dim, generator=g)

    def forward(self, context, target):
        """context (N,), target (N,) ids -> their embeddings, (N, D) each."""
        return self.embedding(_ids(context)), self.embedding(_ids(target))

    def loss(self, context, target, y, margin=0.0):
        """Mean cosine embedding loss of the pairs with labels y in {+1, -1}, (N,)."""
        a, b = self(context, target)
        return cosine_embedding_loss(a, b, np.asarray(y), margin=margin)

    def word_vectors(self):
        """The (V, D) word vectors as a NumPy array."""
        return self.embedding.weight.detach().numpy().copy()


class SkipGramNegativeSampling(nn.Module):
    """SGNS: forward(center (N,), context (N,), negatives (N, K)) -> mean loss."""

    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else Word2VecConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        V, D = cfg.vocab_size, cfg.embedding_dim
        self.in_embed = nn.Embedding(V, D, generator=g)       # v_w: the word vectors
        self.out_embed = nn.Embedding(V, D, generator=g)      # u_w: the context vectors
        # word2vec's initialisation: v ~ U(-0.5/D, 0.5/D), u = 0
        self.in_embed.weight.data[...] = g.rng.uniform(-0.5 / D, 0.5 / D, size=(V, D))
        self.out_embed.weight.data[...] = 0.0

    def forward(self, center, context, negatives):
        v = self.in_embed(_ids(center))                       # (N, D)   v_c
        u = self.out_embed(_ids(context))                     # (N, D)   u_o
        u_neg = self.out_embed(_ids(negatives))               # (N, K, D) u_k
        return negative_sampling_loss(v, u, u_neg)

    def word_vectors(self):
        """The (V, D) word vectors W_in as a NumPy array."""
        return self.in_embed.weight.detach().numpy().copy()
