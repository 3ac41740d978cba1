"""GPT for sequence classification (Hugging Face's GPT2ForSequenceClassification, seeds/002).

Shapes: B batch, T tokens, C channels (n_embd), L labels.

A decoder-only model reads left to right, so only the last real token has seen the whole
text: its hidden state is the summary that a linear layer scores.

    h = GPT trunk(ids)                        (B, T, C)   models/gpt.py's blocks and ln_f
    last_b = index of the last non-padding token of row b
    logits_b = W_score h[b, last_b]           (B, L)      no bias (as HF's ``score``)
    loss = cross-entropy(logits, labels)

Padding must be on the right (the Trainer's collate pads there): with causal attention a real
token never looks at the padding after it, so no attention mask is needed inside the trunk.

Parameter names: ``transformer.*`` exactly as in GPT (GPT-2's checkpoint names) plus
``score.weight``, so a pre-trained GPT's weights load one to one (``from_gpt``,
``from_pretrained``). forward returns a dict {"loss", "logits"}, as the Trainer expects.
"""
import json
import os
from dataclasses import asdict

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..creation import Generator
from ..tensor import Tensor
from .gpt import GPT, GPTConfig


def _array(x):
    """A host (NumPy) copy of ids, masks or labels: the checks and the last-token search run
    on the CPU (B x T integers); the model's device gets them back where it needs them."""
    return backend.to_numpy(x.data if isinstance(x, Tensor) else x)


class GPTForSequenceClassification(nn.Module):
    """forward(input_ids (B, T), attention_mask=None, labels=None) -> {"loss", "logits"}.

    The last real token is found from ``attention_mask`` (1 = token, 0 = padding), else from
    ``pad_token_id`` (the last position not equal to it, HF's rule), else it is position T-1.
    """

    def __init__(self, config=None, num_labels=2, pad_token_id=None, generator=None,
                 **overrides):
        super().__init__()
        cfg = config if config is not None else GPTConfig(**overrides)
        g = generator if generator is not None else Generator(0)
        self.config = cfg
        self.num_labels = num_labels
        self.pad_token_id = pad_token_id
        self.transformer = GPT(cfg, generator=g).transformer   # wte, wpe, drop, h, ln_f
        self.score = nn.Linear(cfg.n_embd, num_labels, bias=False, generator=g)
        self.score.weight.data[...] = g.rng.normal(0.0, 0.02, size=self.score.weight.shape)

    def hidden_states(self, ids):
        """The trunk: ids (B, T) -> ln_f(blocks(wte[ids] + wpe[positions])) (B, T, C)."""
        T = ids.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size "
                             f"{self.config.block_size}")
        tr = self.transformer
        device = tr.wte.weight.device
        xp = backend.get_array_module(tr.wte.weight.data)
        ids = backend.to_device(ids.data if isinstance(ids, Tensor) else ids, device)
        x = tr.drop(tr.wte(ids) + tr.wpe(xp.arange(T, dtype=np.int64)))   # (B, T, C)
        for block in tr.h:
            x = block(x)
        return tr.ln_f(x)                                                  # (B, T, C)

    def last_token_index(self, ids, attention_mask=None):
        """(B,) index of each row's last real token (see the class docstring)."""
        B, T = ids.shape
        if attention_mask is not None:
            mask = _array(attention_mask).astype(bool)
            if mask.shape != (B, T):
                raise ValueError(f"attention_mask of shape {mask.shape} does not match "
                                 f"input_ids of shape {(B, T)}")
            lengths = mask.sum(axis=1)
            if (lengths == 0).any():
                raise ValueError(f"rows {np.flatnonzero(lengths == 0).tolist()} hold no "
                                 "token (attention_mask all 0)")
            if (mask != (np.arange(T)[None, :] < lengths[:, None])).any():
                raise ValueError("GPTForSequenceClassification needs right padding "
                                 "(attention_mask 1...1 0...0 on every row)")
            return lengths - 1
        if self.pad_token_id is not None:
            real = ids != self.pad_token_id                                 # (B, T)
            # the last real position: T - 1 - (first real position of the reversed row)
            return np.where(real.any(axis=1), T - 1 - real[:, ::-1].argmax(axis=1), T - 1)
        return np.full(B, T - 1)

    def forward(self, input_ids, attention_mask=None, labels=None):
        ids = _array(input_ids).astype(np.int64, copy=False)
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, time), got shape {ids.shape}")
        h = self.hidden_states(ids)                                        # (B, T, C)
        last = self.last_token_index(ids, attention_mask)                  # (B,)
        xp = backend.get_array_module(h.data)
        pooled = h[xp.asarray(np.arange(ids.shape[0])), xp.asarray(last)]  # (B, C)
        logits = self.score(pooled)                                        # (B, L)
        loss = None
        if labels is not None:
            target = _array(labels).reshape(-1).astype(np.int64)
            loss = F.cross_entropy(logits, backend.to_device(target, logits.device))
        return {"loss": loss, "logits": logits}

    def config_dict(self):
        return {"gpt": asdict(self.config), "num_labels": self.num_labels,
                "pad_token_id": self.pad_token_id}

    @classmethod
    def from_gpt(cls, gpt, num_labels=2, pad_token_id=None, generator=None):
        """A classifier whose trunk is a copy of ``gpt``'s weights (the score layer is new)."""
        model = cls(gpt.config, num_labels, pad_token_id, generator)
        model.transformer.load_state_dict(gpt.transformer.state_dict())
        return model

    @classmethod
    def from_pretrained(cls, folder, num_labels=2, pad_token_id=None, generator=None):
        """From a checkpoint folder of a GPT (written by ``train`` / ``save_checkpoint``) or a
        Hugging Face GPT-2 folder, as ``AutoModelForSequenceClassification.from_pretrained``
        (seeds/002). The score layer starts fresh."""
        hf_config = os.path.join(folder, "config.json")
        gpt = None
        if os.path.exists(hf_config):
            with open(hf_config, encoding="utf-8") as f:
                if json.load(f).get("model_type") == "gpt2":
                    gpt = GPT.from_pretrained(folder)
        if gpt is None:
            from ..checkpoint import check_state_dict, read_checkpoint
            info = read_checkpoint(folder)
            gpt = GPT(GPTConfig(**info["config"]["model_config"]))
            check_state_dict(gpt.state_dict(), info["weights"], info["folder"])
            gpt.load_state_dict(info["weights"])
        return cls.from_gpt(gpt, num_labels, pad_token_id, generator)
