"""BERT: a bidirectional Transformer encoder, pre-trained by masked language modelling (MLM)
and next-sentence prediction (NSP), then fine-tuned with a classification head on [CLS]
(Devlin et al., 2019; the pre-train / fine-tune recipe of seeds/003).

Shapes: B batch, T tokens, C channels (hidden_size), V vocab, L labels.

    x_0 = LayerNorm(word[ids] + position[0..T-1] + token_type[segment])     embeddings
    for each layer (post-LN, the encoder equations of seeds/003):
        Z = LayerNorm(X + Attention(X))            padding keys masked out (attention_mask 0)
        H = LayerNorm(Z + FFN(Z)),   FFN(z) = W_2 gelu(W_1 z + b_1) + b_2
    pooled = tanh(W_p H[:, 0] + b_p)                                         the [CLS] summary

Heads:
    MLM   logits = LayerNorm(gelu(W_t H + b_t)) word^T + b_V     decoder tied to the word table
          loss_MLM = mean over the masked positions of -log p(original token)
    NSP   logits = W_s pooled + b_s       2 classes: 0 = B follows A (IsNext), 1 = NotNext
    pre-training loss = loss_MLM + loss_NSP                         (HF's BertForPreTraining)
    classification  logits = W_c dropout(pooled) + b_c,  loss = cross-entropy(logits, label)

Parameter names follow Hugging Face's BERT outside the encoder (``bert.embeddings.LayerNorm``,
``bert.pooler.dense``, ``cls.predictions.transform.dense``, ``cls.seq_relationship``,
``classifier``); the encoder is ``nn.TransformerEncoder`` with PyTorch's names
(``bert.encoder.layers.0.self_attn.in_proj_weight``, ``linear1``, ``norm1``, ...).
Models take and return what the Trainer expects: ``model(**batch)`` -> dict with "loss" and
"logits" (HF's convention rather than nanoGPT's tuple, because batches are dicts here).
"""
from dataclasses import asdict, dataclass

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..creation import Generator
from ..tensor import Tensor

IGNORE_INDEX = -100


@dataclass
class BertConfig:
    vocab_size: int = 30522               # BERT-base's WordPiece vocabulary
    max_position_embeddings: int = 512    # longest sequence (size of the position table)
    type_vocab_size: int = 2              # segments: 0 = sentence A, 1 = sentence B
    hidden_size: int = 256                # channels C (must divide by num_attention_heads)
    num_hidden_layers: int = 4            # encoder layers
    num_attention_heads: int = 4          # heads per layer
    intermediate_size: int = 1024         # FFN inner size (4 C)
    hidden_dropout_prob: float = 0.1      # dropout on embeddings, sublayer outputs, [CLS] head
    attention_probs_dropout_prob: float = 0.1   # dropout on the attention weights
    layer_norm_eps: float = 1e-12         # BERT's LayerNorm epsilon
    initializer_range: float = 0.02       # std of the N(0, std^2) weight initialization
    num_labels: int = 2                   # classes of the sequence-classification head

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")


def _int_array(x, device=None):
    """An int64 array from a Tensor, NumPy/CuPy array or nested list, moved to ``device``
    when given (the model's), else left where it is."""
    raw = x.data if isinstance(x, Tensor) else x
    arr = raw if backend.is_cupy_array(raw) else np.asarray(raw)
    arr = arr.astype(np.int64, copy=False)
    return arr if device is None else backend.to_device(arr, device)


def _ids(x, name="input_ids", device=None):
    """A (B, T) int64 array (see ``_int_array``)."""
    arr = _int_array(x, device)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (batch, time), got shape {tuple(arr.shape)}")
    return arr


def padding_mask(attention_mask, shape, device=None):
    """Key padding mask (B, T) bool, True = ignore that key, from HF's attention_mask
    (1 = real token, 0 = padding); None when there is no mask or no padding."""
    if attention_mask is None:
        return None
    mask = _ids(attention_mask, "attention_mask", device)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"attention_mask of shape {tuple(mask.shape)} does not match "
                         f"input_ids of shape {tuple(shape)}")
    pad = mask == 0
    return pad if bool(pad.any()) else None


# ----- building blocks ------------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    """x = LayerNorm(word[ids] + position[t] + token_type[segment]), then dropout."""

    def __init__(self, cfg, generator=None):
        super().__init__()
        C = cfg.hidden_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, C, generator=generator)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, C,
                                                generator=generator)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, C, generator=generator)
        self.LayerNorm = nn.LayerNorm(C, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob, generator=generator)

    def forward(self, ids, token_type_ids=None):
        B, T = ids.shape
        if T > self.position_embeddings.num_embeddings:
            raise ValueError(f"sequence of length {T} is longer than max_position_embeddings "
                             f"{self.position_embeddings.num_embeddings}")
        device = self.word_embeddings.weight.device          # ids built where the weights are
        xp = backend.get_array_module(self.word_embeddings.weight.data)
        types = (xp.zeros((B, T), dtype=np.int64) if token_type_ids is None
                 else _ids(token_type_ids, "token_type_ids", device))
        x = (self.word_embeddings(ids)                                     # (B, T, C)
             + self.position_embeddings(xp.arange(T, dtype=np.int64))      # (T, C)
             + self.token_type_embeddings(types))                          # (B, T, C)
        return self.dropout(self.LayerNorm(x))


class BertPooler(nn.Module):
    """pooled = tanh(W_p h_[CLS] + b_p): the first position summarizes the sequence."""

    def __init__(self, cfg, generator=None):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size, generator=generator)

    def forward(self, hidden):
        return self.dense(hidden[:, 0]).tanh()                            # (B, C)


class BertModel(nn.Module):
    """The BERT trunk: forward(input_ids, attention_mask=None, token_type_ids=None) ->
    (sequence_output (B, T, C), pooled_output (B, C))."""

    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else BertConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        self.embeddings = BertEmbeddings(cfg, g)
        layer = nn.TransformerEncoderLayer(
            cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
            dropout=cfg.hidden_dropout_prob, activation="gelu", layer_norm_eps=cfg.layer_norm_eps,
            batch_first=True, norm_first=False, generator=g)
        layer.self_attn.dropout = cfg.attention_probs_dropout_prob   # BERT has its own rate
        self.encoder = nn.TransformerEncoder(layer, cfg.num_hidden_layers)   # no final norm
        self.pooler = BertPooler(cfg, g)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        device = self.embeddings.word_embeddings.weight.device
        ids = _ids(input_ids, device=device)
        x = self.embeddings(ids, token_type_ids)                          # (B, T, C)
        h = self.encoder(x, src_key_padding_mask=padding_mask(attention_mask, ids.shape,
                                                               device))
        return h, self.pooler(h)                                          # (B, T, C), (B, C)


def init_bert_weights(module, std=0.02, generator=None):
    """BERT's initialization: matrices (Linear, Embedding, attention projections) ~ N(0, std^2),
    biases 0, LayerNorm gains 1. Returns the module."""
    rng = (generator if generator is not None else Generator(0)).rng
    for name, p in module.named_parameters():
        if p.ndim >= 2:
            p.data[...] = rng.normal(0.0, std, size=p.shape)
        elif name.endswith("bias"):
            p.data[...] = 0.0
        else:                                   # the 1-D weights are LayerNorm gains
            p.data[...] = 1.0
    return module


# ----- heads ----------------------------------------------------------------------------------

class BertPredictionHeadTransform(nn.Module):
    """t = LayerNorm(gelu(W_t h + b_t)), per position."""

    def __init__(self, cfg, generator=None):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size, generator=generator)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h):
        return self.LayerNorm(F.gelu(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    """MLM logits = transform(h) word^T + b_V: the decoder reuses the word embedding table."""

    def __init__(self, cfg, generator=None):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg, generator)
        self.bias = nn.Parameter(np.zeros(cfg.vocab_size, dtype=np.float32))

    def forward(self, h, word_weight):
        return self.transform(h) @ word_weight.T + self.bias              # (..., V)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, cfg, generator=None):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, generator)
        self.seq_relationship = nn.Linear(cfg.hidden_size, 2, generator=generator)


# ----- models ---------------------------------------------------------------------------------

class BertForPreTraining(nn.Module):
    """BERT with the MLM and NSP heads.

    forward(input_ids, attention_mask=None, token_type_ids=None, labels=None,
            next_sentence_label=None) -> {"loss", "mlm_loss", "nsp_loss", "logits" (B, T, V),
            "seq_relationship_logits" (B, 2)}; labels hold -100 where nothing was masked.
    A loss is None when its labels are not given; "loss" sums the ones that are.
    """

    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else BertConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        self.bert = BertModel(cfg, g)
        self.cls = BertPreTrainingHeads(cfg, g)
        init_bert_weights(self, cfg.initializer_range, g)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                next_sentence_label=None):
        h, pooled = self.bert(input_ids, attention_mask, token_type_ids)  # (B, T, C), (B, C)
        B, T, _ = h.shape
        word = self.bert.embeddings.word_embeddings.weight                # (V, C)
        logits = self.cls.predictions(h, word)                            # (B, T, V)
        nsp_logits = self.cls.seq_relationship(pooled)                    # (B, 2)
        mlm_loss = nsp_loss = None
        if labels is not None:
            mlm_loss = F.cross_entropy(logits.reshape(B * T, -1),
                                       _ids(labels, "labels", logits.device).reshape(B * T),
                                       ignore_index=IGNORE_INDEX)
        if next_sentence_label is not None:
            nsp_target = _int_array(next_sentence_label, nsp_logits.device)
            nsp_loss = F.cross_entropy(nsp_logits, nsp_target.reshape(B))
        losses = [x for x in (mlm_loss, nsp_loss) if x is not None]
        loss = None if not losses else (losses[0] if len(losses) == 1 else losses[0] + losses[1])
        return {"loss": loss, "mlm_loss": mlm_loss, "nsp_loss": nsp_loss, "logits": logits,
                "seq_relationship_logits": nsp_logits}

    def config_dict(self):
        return asdict(self.config)


class BertForSequenceClassification(nn.Module):
    """BERT with a linear classifier on the pooled [CLS] output.

    forward(input_ids, attention_mask=None, token_type_ids=None, labels=None)
        -> {"loss" (None without labels), "logits" (B, num_labels)}
    ``from_pretrained(folder)`` starts from the ``bert.*`` weights of a pre-training
    checkpoint (the MLM/NSP heads are dropped; the classifier starts fresh).
    """

    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else BertConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        self.bert = BertModel(cfg, g)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob, generator=g)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels, generator=g)
        init_bert_weights(self, cfg.initializer_range, g)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)  # (B, C)
        logits = self.classifier(self.dropout(pooled))                    # (B, L)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, _int_array(labels, logits.device).reshape(-1))
        return {"loss": loss, "logits": logits}

    def config_dict(self):
        return asdict(self.config)

    @classmethod
    def from_pretrained(cls, folder, num_labels=None, generator=None, **overrides):
        """A classifier whose trunk is the ``bert.*`` weights of a checkpoint folder written by
        ``save_checkpoint`` (e.g. of a BertForPreTraining); config fields can be overridden
        (dropout, num_labels). Missing or mis-shaped trunk weights are a ValueError."""
        from ..checkpoint import check_state_dict, read_checkpoint
        info = read_checkpoint(folder)
        fields = dict(info["config"]["model_config"], **overrides)
        if num_labels is not None:
            fields["num_labels"] = num_labels
        model = cls(BertConfig(**fields), generator)
        trunk = {k[len("bert."):]: v for k, v in info["weights"].items()
                 if k.startswith("bert.")}
        check_state_dict(model.bert.state_dict(), trunk, info["folder"])
        model.bert.load_state_dict(trunk)
        return model
