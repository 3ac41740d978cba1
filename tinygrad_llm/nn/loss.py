"""Loss Modules with PyTorch's names (torch.nn's loss classes): each holds its options and
buffers and calls the functional form in tinygrad_llm/losses.py, where the formulas are.

    MSELoss                  losses.mse_loss
    BCELoss                  losses.binary_cross_entropy            (weight buffer)
    BCEWithLogitsLoss        losses.binary_cross_entropy_with_logits (weight, pos_weight)
    CrossEntropyLoss         losses.cross_entropy (class indices or class probabilities)
    NLLLoss                  losses.nll_loss
    CosineEmbeddingLoss      losses.cosine_embedding_loss
    NegativeSamplingLoss     losses.negative_sampling_loss (word2vec SGNS)
"""
import numpy as np

from .. import backend
from .. import losses as L   # the module, not its names: losses.py imports nn.module itself
from ..tensor import Tensor
from .module import Module


def _buffer(value):
    """A constant tensor for a loss buffer (class weights, pos_weight), or None."""
    if value is None or isinstance(value, Tensor):
        return value
    if backend.is_cupy_array(value):            # stays on its GPU
        return Tensor(value)
    return Tensor(np.asarray(value))


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        L._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    def forward(self, input, target):
        return L.mse_loss(input, target, self.reduction)


class BCELoss(_Loss):
    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))

    def forward(self, input, target):
        return L.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input, target):
        return L.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  pos_weight=self.pos_weight)


class CrossEntropyLoss(_Loss):
    """Class-index targets go to the fused F.cross_entropy, probability targets to the
    soft-label composite (see ``losses.cross_entropy``)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return L.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_Loss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return L.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CosineEmbeddingLoss(_Loss):
    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return L.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class NegativeSamplingLoss(_Loss):
    def forward(self, center, context, negatives):
        return L.negative_sampling_loss(center, context, negatives, self.reduction)
