"""``tinygrad_llm.nn.functional``, where PyTorch users look for F: the functional interface
(functional.py) and the loss functions (losses.py) under one name.

    import tinygrad_llm.nn.functional as F
"""
from ..functional import *  # noqa: F401,F403  (softmax, cross_entropy, linear, dropout, ...)
from ..functional import __all__ as _functional_names
from ..losses import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                      cosine_embedding_loss, mse_loss, nll_loss)

__all__ = list(_functional_names) + [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss",
    "mse_loss", "nll_loss"]
