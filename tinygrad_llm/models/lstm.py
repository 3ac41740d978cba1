"""An LSTM language model: seed 001's Keras model, Embedding -> LSTM(128) -> Dense(vocab).

Shapes: B batch, T time (tokens), E embedding size, H hidden size (LSTM units), L layers,
V vocabulary.

    x_t    = E[w_t]                                   embedding lookup           (B, T, E)
    h_t    = LSTM(x_t, h_{t-1}, c_{t-1})              gates in nn/rnn.py         (B, T, H)
    z_t    = h_t W^T + b                              the Dense layer            (B, T, V)
    P(w_{t+1} | w_1..w_t) = softmax(z_t)

Seed 001 writes ``Dense(vocab_size, activation='softmax')`` trained with
``sparse_categorical_crossentropy``; here the head returns the logits z and the softmax is
folded into the cross-entropy (log-softmax, stable for logits of any size): the same model and
the same loss, -log softmax(z_t)[w_{t+1}], averaged over every position. The seed's Keras model
returns only the last LSTM state (``LSTM(128)``), i.e. one prediction per window; training on
every position of the window (many-to-many) uses the same weights and sees T times more
targets per forward pass.

Generation carries the LSTM state (h, c) from step to step, so each new token costs one LSTM
step (the recurrent counterpart of GPT's KV cache).
"""
from dataclasses import asdict, dataclass

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import no_grad
from ..creation import Generator
from ..generate import decode_loop
from ..nn.rnn import LSTM
from ..tensor import Tensor


def _int_tensor(x, device):
    """Token ids or targets as an int64 Tensor on ``device`` (the model's), from a Tensor,
    NumPy/CuPy array or nested list."""
    raw = x.data if isinstance(x, Tensor) else x
    raw = raw if backend.is_cupy_array(raw) else np.asarray(raw)
    return Tensor(backend.to_device(raw.astype(np.int64, copy=False), device))


@dataclass
class LSTMConfig:
    vocab_size: int = 128        # V: tokens of the tokenizer
    n_embd: int = 64             # E: embedding size (Keras's output_dim)
    hidden_size: int = 128       # H: LSTM units (seed 001: LSTM(128))
    num_layers: int = 1          # stacked LSTM layers
    dropout: float = 0.0         # dropout on the embeddings and the LSTM output


class LSTMLanguageModel(nn.Module):
    """Embedding -> LSTM -> Linear(vocab); see the module docstring."""

    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else LSTMConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.n_embd, generator=g)
        self.lstm = LSTM(cfg.n_embd, cfg.hidden_size, num_layers=cfg.num_layers,
                         batch_first=True, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
                         generator=g)
        self.drop = nn.Dropout(cfg.dropout, generator=g)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size, generator=g)

    def step(self, idx, state=None):
        """idx (B, T) -> (logits (B, T, V), state): state = (h, c), each (L, B, H), is what
        the LSTM held after the last token; pass it back to continue the sequence."""
        idx = _int_tensor(idx, self.embedding.weight.device)
        x = self.drop(self.embedding(idx))                                # (B, T, E)
        out, state = self.lstm(x, state)                                  # (B, T, H)
        return self.head(self.drop(out)), state                           # (B, T, V)

    def forward(self, idx, targets=None):
        """idx (B, T) -> logits (B, T, V); with targets (B, T), also the mean cross-entropy
        (targets of -100 are ignored)."""
        logits, _ = self.step(idx)
        loss = None
        if targets is not None:
            B, T, V = logits.shape
            t = _int_tensor(targets, logits.device)
            loss = F.cross_entropy(logits.reshape(B * T, V), t.reshape(B * T))
        return logits, loss

    def log_probs(self, idx, targets):
        """log P(targets[b, t] | idx[b, :t+1]) as a (B, T) tensor (differentiable), for
        scoring sequences (perplexity, policy gradients)."""
        logits, _ = self.step(idx)                                        # (B, T, V)
        t = _int_tensor(targets, logits.device).data
        logp = F.log_softmax(logits, dim=-1)                              # (B, T, V)
        return logp.gather(2, Tensor(t[..., None])).squeeze(2)            # (B, T)

    @no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                 do_sample=True, generator=None, eos_token_id=None, stream=None):
        """Extend idx (B, T) by max_new_tokens tokens; returns a (B, T + n) int64 array.

        The prompt is read once; after that each step feeds only the newest token and the
        carried state (h, c).
        """
        was_training = self.training
        self.eval()

        def step(new_ids, state):
            logits, state = self.step(new_ids, state)
            return logits.data[:, -1, :], state

        try:
            return decode_loop(step, idx, max_new_tokens, temperature=temperature,
                               top_k=top_k, top_p=top_p, do_sample=do_sample,
                               generator=generator, eos_token_id=eos_token_id, stream=stream)
        finally:
            self.train(was_training)

    def config_dict(self):
        return asdict(self.config)
