"""A Transformer encoder-decoder for sequence-to-sequence tasks (translation), with the post-LN
equations of seeds/003 (Vaswani et al., 2017).

Shapes: B batch, S source tokens, T target tokens, E d_model, V vocab, K beams.

    X = embed(src) sqrt(E) + PE[:S]                 sinusoidal positions (fixed)
    encoder, each layer:  Z = LayerNorm(X + Attention(X))         padding keys masked out
                          H = LayerNorm(Z + FFN(Z))
    Y = embed(tgt_in) sqrt(E) + PE[:T]              tgt_in = <bos> y_1 .. y_{T-1}
    decoder, each layer:  Z = LayerNorm(Y + MaskedAttention(Y))   softmax(QK^T/sqrt(d_k) + M)V,
                                                                   M_ij = -inf for j > i
                          C = LayerNorm(Z + CrossAttention(Z, H)) queries Z, keys/values H
                          O = LayerNorm(C + FFN(C))
    logits = O W_out^T                               W_out = the target embedding when tied
    loss = cross-entropy(logits, y_1 .. y_T <eos>)   teacher forcing; padding ignored (-100)

Decoding: greedy (argmax, one token at a time, batched) or beam search (the K prefixes of
highest total log-probability, ``tinygrad_llm.generate.beam_search``). The encoder runs once;
the decoder re-reads the prefix at each step (no cache: simple and exact).

The encoder and decoder are nn.TransformerEncoder / nn.TransformerDecoder (PyTorch's parameter
names) without a final LayerNorm: in post-LN every layer already ends in one.
forward takes and returns what the Trainer expects (a dict with "loss" and "logits").
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import no_grad
from ..creation import Generator
from ..generate import beam_search
from ..tensor import Tensor


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 128          # source vocabulary (the shared one when sharing)
    tgt_vocab_size: int = 128          # target vocabulary
    d_model: int = 128                 # channels E (must divide by nhead)
    nhead: int = 4                     # attention heads
    num_encoder_layers: int = 3
    num_decoder_layers: int = 3
    dim_feedforward: int = 512         # FFN inner size
    dropout: float = 0.1               # on embeddings, attention weights and sublayer outputs
    activation: str = "relu"           # FFN activation (the original Transformer's)
    max_len: int = 256                 # longest source or target (size of the PE table)
    share_embeddings: bool = True      # one table for source and target (shared vocabulary)
    tie_output: bool = True            # W_out = target embedding (Press & Wolf, 2017)
    layer_norm_eps: float = 1e-5
    label_smoothing: float = 0.0       # of the training loss
    pad_token_id: int = 0              # [PAD] of the data tokenizers
    bos_token_id: int = 5              # <bos>
    eos_token_id: int = 6              # <eos>

    def __post_init__(self):
        if self.d_model % self.nhead:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by nhead "
                             f"({self.nhead})")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(f"share_embeddings needs one vocabulary, got src_vocab_size="
                             f"{self.src_vocab_size} and tgt_vocab_size={self.tgt_vocab_size}")


def _ids(x, name):
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (batch, time), got shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def _padding(mask, shape, name):
    """bool (B, L), True = padding, from an HF mask (1 = token); None if nothing is padded."""
    if mask is None:
        return None
    pad = _ids(mask, name) == 0
    if pad.shape != tuple(shape):
        raise ValueError(f"{name} of shape {pad.shape} does not match ids of shape "
                         f"{tuple(shape)}")
    return pad if pad.any() else None


class Seq2SeqTransformer(nn.Module):
    """forward(input_ids (B, S), decoder_input_ids (B, T), attention_mask=None, labels=None,
    decoder_attention_mask=None) -> {"loss" (None without labels), "logits" (B, T, V)}."""

    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else Seq2SeqConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        E = cfg.d_model
        self.src_embed = nn.Embedding(cfg.src_vocab_size, E, generator=g)
        if not cfg.share_embeddings:
            self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, E, generator=g)
        self.pos = nn.SinusoidalPositionalEncoding(E, cfg.max_len, cfg.dropout, generator=g)
        kw = dict(dim_feedforward=cfg.dim_feedforward, dropout=cfg.dropout,
                  activation=cfg.activation, layer_norm_eps=cfg.layer_norm_eps,
                  batch_first=True, norm_first=False, generator=g)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(E, cfg.nhead, **kw), cfg.num_encoder_layers)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(E, cfg.nhead, **kw), cfg.num_decoder_layers)
        if not cfg.tie_output:
            self.lm_head = nn.Linear(E, cfg.tgt_vocab_size, bias=False, generator=g)
        # nn.Transformer's initialization (xavier_uniform_ on every matrix, so the cloned
        # layers differ), embeddings ~ N(0, 1/E) so that embed * sqrt(E) has unit variance.
        for name, p in self.named_parameters():
            if "embed" in name:
                p.data[...] = g.rng.normal(0.0, E ** -0.5, size=p.shape)
            elif p.ndim > 1:
                nn.init.xavier_uniform_(p, generator=g)

    def _tgt_embed(self):
        return self.src_embed if self.config.share_embeddings else self.tgt_embed

    def encode(self, input_ids, attention_mask=None):
        """Source ids (B, S) -> (memory H (B, S, E), source padding mask (B, S) or None)."""
        ids = _ids(input_ids, "input_ids")
        pad = _padding(attention_mask, ids.shape, "attention_mask")
        x = self.pos(self.src_embed(ids) * math.sqrt(self.config.d_model))  # (B, S, E)
        return self.encoder(x, src_key_padding_mask=pad), pad

    def decode(self, decoder_input_ids, memory, memory_padding=None):
        """Target prefix ids (B, T) and memory (B, S, E) -> next-token logits (B, T, V).

        The causal mask keeps position i from seeing j > i. Target padding needs no mask:
        padding sits on the right, where the causal mask already hides it from real tokens.
        """
        ids = _ids(decoder_input_ids, "decoder_input_ids")
        y = self.pos(self._tgt_embed()(ids) * math.sqrt(self.config.d_model))   # (B, T, E)
        o = self.decoder(y, memory, memory_key_padding_mask=memory_padding,
                         tgt_is_causal=True)                                   # (B, T, E)
        if self.config.tie_output:
            return o @ self._tgt_embed().weight.T                              # (B, T, V)
        return self.lm_head(o)

    def forward(self, input_ids, decoder_input_ids, attention_mask=None, labels=None,
                decoder_attention_mask=None):
        # decoder_attention_mask (PadCollate makes one) is not needed: see decode()
        memory, pad = self.encode(input_ids, attention_mask)
        logits = self.decode(decoder_input_ids, memory, pad)                   # (B, T, V)
        loss = None
        if labels is not None:
            B, T, V = logits.shape
            loss = F.cross_entropy(logits.reshape(B * T, V),
                                   _ids(labels, "labels").reshape(B * T),
                                   label_smoothing=self.config.label_smoothing)
        return {"loss": loss, "logits": logits}

    # ----- decoding ---------------------------------------------------------------------------

    def _strip(self, seq):
        """Generated ids after <bos>, up to (not including) the first <eos>."""
        seq = [int(t) for t in seq]
        eos = self.config.eos_token_id
        return seq[:seq.index(eos)] if eos in seq else seq

    @no_grad()
    def greedy_decode(self, input_ids, attention_mask=None, max_new_tokens=64):
        """argmax decoding of a batch: a list of B token lists (no <bos>, cut at <eos>)."""
        was_training = self.training
        self.eval()
        memory, pad = self.encode(input_ids, attention_mask)
        B = memory.shape[0]
        out = np.full((B, 1), self.config.bos_token_id, dtype=np.int64)        # (B, 1)
        done = np.zeros(B, dtype=bool)
        for _ in range(max_new_tokens):
            logits = self.decode(out, memory, pad).data[:, -1]                 # (B, V)
            nxt = np.where(done, self.config.pad_token_id, logits.argmax(-1))
            out = np.concatenate([out, nxt[:, None]], axis=1)                  # (B, t + 1)
            done |= nxt == self.config.eos_token_id
            if done.all():
                break
        self.train(was_training)
        return [self._strip(row[1:]) for row in out]

    @no_grad()
    def beam_decode(self, input_ids, beam_size=4, max_new_tokens=64, length_penalty=1.0):
        """Beam search for each source row (one at a time): a list of token lists."""
        was_training = self.training
        self.eval()
        ids = _ids(input_ids, "input_ids")
        results = []
        for row in ids:
            row = row[row != self.config.pad_token_id][None]                   # (1, S)
            memory, _ = self.encode(row)                                       # (1, S, E)

            def step(prefixes, memory=memory):                                 # (K, t)
                mem = Tensor(np.repeat(memory.data, len(prefixes), axis=0))    # (K, S, E)
                logits = self.decode(prefixes, mem).data[:, -1]                # (K, V)
                return F.log_softmax(Tensor(logits), dim=-1).data              # (K, V)

            seq = beam_search(step, [self.config.bos_token_id], max_new_tokens,
                              beam_size=beam_size, eos_token_id=self.config.eos_token_id,
                              length_penalty=length_penalty)
            results.append(self._strip(seq[1:]))
        self.train(was_training)
        return results

    def generate(self, input_ids, attention_mask=None, max_new_tokens=64, num_beams=1,
                 length_penalty=1.0):
        """Greedy decoding (num_beams=1) or beam search: a list of token lists."""
        if num_beams > 1:
            return self.beam_decode(input_ids, num_beams, max_new_tokens, length_penalty)
        return self.greedy_decode(input_ids, attention_mask, max_new_tokens)

    def config_dict(self):
        return asdict(self.config)
