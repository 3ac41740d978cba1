"""Layers and containers with PyTorch's names: ``from tinygrad_llm import nn``.

    module.py       Module, Parameter
    containers.py   Sequential, ModuleList, ModuleDict
    init.py         PyTorch's initializations written out (seeded by a Generator)
    layers.py       Linear, Embedding, LayerNorm, Dropout, Identity, Flatten, activations
    attention.py    MultiheadAttention
    rnn.py          LSTM (whole-sequence Function with hand-written BPTT), LSTMCell
    transformer.py  positional encodings, feed-forward, Transformer encoder/decoder layers,
                    stacks and the full Transformer
    loss.py         the loss Modules (MSELoss, CrossEntropyLoss, ...; formulas in losses.py)
    functional.py   F as PyTorch users import it (tinygrad_llm.functional + the losses)
    utils.py        clip_grad_norm_, clip_grad_value_, parameters_to_vector
"""
from . import functional, init, utils
from .attention import MultiheadAttention
from .layers import (GELU, Dropout, Embedding, Flatten, Identity, LayerNorm, Linear, ReLU,
                     Sigmoid, Softmax, Tanh)
from .containers import ModuleDict, ModuleList, Sequential
from .module import Module, Parameter
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, MSELoss,
                   NegativeSamplingLoss, NLLLoss)
from .rnn import LSTM, LSTMCell
from .transformer import (LearnedPositionalEmbedding, PositionwiseFeedForward,
                          SinusoidalPositionalEncoding, Transformer, TransformerDecoder,
                          TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer,
                          sinusoidal_position_encoding)

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CosineEmbeddingLoss", "CrossEntropyLoss", "MSELoss",
    "NegativeSamplingLoss", "NLLLoss",
    "LSTM", "LSTMCell", "Dropout", "Embedding", "Flatten", "GELU", "Identity", "LayerNorm",
    "LearnedPositionalEmbedding", "Linear", "Module", "ModuleDict", "ModuleList",
    "MultiheadAttention", "Parameter", "PositionwiseFeedForward", "ReLU", "Sequential",
    "Sigmoid", "SinusoidalPositionalEncoding", "Softmax", "Tanh", "Transformer",
    "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "functional", "init", "sinusoidal_position_encoding", "utils",
]
