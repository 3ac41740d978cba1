"""Fused kernels: pure array functions (reference | numba CPU | numba CUDA).

Arrays in, arrays out: nothing here knows about Tensor or autograd. Each op has a
``<op>_forward`` / ``<op>_backward`` pair taking NumPy or CuPy arrays and an ``impl=`` argument
("auto", "ref", "cpu", "cuda"); the choice is made in one place, ``_dispatch.choose_impl``
(array type, the per-call ``impl``, and ``TINYGRAD_LLM_KERNELS=ref`` to force the reference).
Each op's file holds its readable reference first; the references are exported too
(``*_ref``) as the unfused twins tests compare against.

    softmax_forward(x) -> y                 softmax_backward(y, dy) -> dx
    log_softmax_forward(x) -> y             log_softmax_backward(y, dy) -> dx
    attention_forward(q, k, v, ...) -> (out, lse)
    attention_backward(q, k, v, out, lse, dout, ...) -> (dq, dk, dv)
    layer_norm_forward(x, weight, bias, eps) -> (y, mean, rstd)
    layer_norm_backward(dy, x, weight, mean, rstd, has_bias=...) -> (dx, dweight, dbias)
    cross_entropy_forward(logits, targets, ...) -> (loss, lse)
    cross_entropy_backward(logits, targets, lse, dloss, ...) -> dlogits
    embedding_backward(ids, dy, num_rows, padding_idx=None) -> dweight
    erf(x) -> erf(x)
    gpt_block_decode(x, weights, k_cache, v_cache, t, n_head) -> x   (one decoding step of a
        pre-LN GPT block, in place; the model's Tensor forward is its twin)
"""
from ._dispatch import choose_impl, cudasim_enabled, numba_available, numba_cuda_usable
from .attention import (attention_backward, attention_backward_ref, attention_forward,
                        attention_forward_ref)
from .cross_entropy import (cross_entropy_backward, cross_entropy_backward_ref,
                            cross_entropy_forward, cross_entropy_rows_ref)
from .embedding import embedding_backward, embedding_backward_ref
from .layer_norm import (layer_norm_backward, layer_norm_backward_ref, layer_norm_forward,
                         layer_norm_forward_ref)
from .softmax import (log_softmax_backward, log_softmax_backward_ref, log_softmax_forward,
                      log_softmax_ref, softmax_backward, softmax_backward_ref, softmax_forward,
                      softmax_ref)
from .gpt_decode import BlockWeights, block_decode_ref, gpt_block_decode
from .special import erf, erf_ref

__all__ = [
    "choose_impl", "cudasim_enabled", "numba_available", "numba_cuda_usable",
    "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "softmax_ref", "softmax_backward_ref", "log_softmax_ref", "log_softmax_backward_ref",
    "attention_forward", "attention_backward", "attention_forward_ref",
    "attention_backward_ref",
    "layer_norm_forward", "layer_norm_backward", "layer_norm_forward_ref",
    "layer_norm_backward_ref",
    "cross_entropy_forward", "cross_entropy_backward", "cross_entropy_rows_ref",
    "cross_entropy_backward_ref",
    "embedding_backward", "embedding_backward_ref",
    "erf", "erf_ref",
    "BlockWeights", "gpt_block_decode", "block_decode_ref",
]
