"""One decoding step of a pre-LN GPT block (GPT-2's), fused into one call.

While generating with a KV cache, each new token goes through about twenty small ops per block
(two LayerNorms, four products, attention over the cache, GELU, two residual adds). Each is a
few microseconds of arithmetic wrapped in ~20 us of Python, so the Tensor path spends most of
a token in dispatch. This kernel runs the whole block for the newest position in one compiled
call. The model's Tensor forward (models/gpt.py) is its unfused twin: tests check that both
give the same logits and the same tokens.

Shape legend: B sequences decoded together, C channels, H heads, D = C / H head size, F the MLP
width (4C), S cache length (block_size), t the position being decoded (t < S).

    h = LN_1(x)                                          x (B, C): the residual stream at t
    q, k, v = split(h W_attn^T + b_attn)                 (B, 3C) -> 3 x (B, H, D)
    K[:, :, t], V[:, :, t] = k, v                        the cache gets position t
    a_s = softmax_s(q . K[:, :, s] / sqrt(D)),  s <= t   every cached position is in the
                                                         past of t: no mask is needed
    x = x + merge_heads(sum_s a_s V[:, :, s]) W_proj^T + b_proj
    x = x + gelu(LN_2(x) W_fc^T + b_fc) W_fc2^T + b_fc2

    (a) reference   NumPy/CuPy, written like the equations
    (b) numba CPU   one @njit call: each product reads every weight row once for all B rows,
                    rows split over the threads (_blas's decoding loop, inlined: a cached
                    kernel must not call a parallel one, numba issue 8578); LayerNorm is
                    layer_norm.py's row kernel; attention is a loop over the cached positions
                    with the polynomial exp of _fastmath; GELU uses tanh_fast / erf_fast.
                    In a child forked after numba's OpenMP layer started, the same loops run
                    on one thread (numba kills such a child at its first parallel region).
There is no CUDA kernel: on CuPy arrays the reference runs.

Weights come as a ``BlockWeights`` tuple in PyTorch's (out, in) layout, with zeros for absent
biases. ``x``, ``k_cache`` and ``v_cache`` are updated in place; nothing else is written.
"""
import math
from collections import namedtuple

import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _blas
from . import _dispatch as D
from ._blas import FEW_ROWS, few_rows_times_transposed_inline
from ._fastmath import FASTMATH, as_type_of, erf_fast, exp_le0, fmax, tanh_fast
from .gelu import GELU_CUBIC, SQRT_2_OVER_PI, gelu_tanh_forward_ref
from .layer_norm import _ln_fwd_cpu, layer_norm_forward, layer_norm_forward_ref
from .softmax import softmax_ref
from .special import erf_ref

GELUS = ("tanh", "none")                            # GPT-2's tanh approximation, exact (erf)

BlockWeights = namedtuple("BlockWeights", [
    "ln1_w", "ln1_b",        # (C,) LayerNorm before attention
    "attn_w", "attn_b",      # (3C, C), (3C,) the q, k, v projections, stacked
    "proj_w", "proj_b",      # (C, C), (C,) attention output projection
    "ln2_w", "ln2_b",        # (C,) LayerNorm before the MLP
    "fc_w", "fc_b",          # (F, C), (F,) MLP up projection
    "fc2_w", "fc2_b",        # (C, F), (C,) MLP down projection
])


# ---------------------------------------------------------------------------------------------
# (a) Reference: NumPy/CuPy, written like the equations above
# ---------------------------------------------------------------------------------------------

def block_decode_ref(x, w, k_cache, v_cache, t, n_head, eps=1e-5, gelu="tanh"):
    """The step of the module docstring on x (B, C); returns x (updated in place)."""
    xp = get_array_module(x)
    B, C = x.shape
    head_size = C // n_head
    h = layer_norm_forward_ref(x, w.ln1_w, w.ln1_b, eps)[0]                 # (B, C)
    qkv = h @ w.attn_w.T + w.attn_b                                         # (B, 3C)
    q, k, v = qkv.reshape(B, 3, n_head, head_size).transpose(1, 0, 2, 3)   # 3 x (B, H, D)
    k_cache[:, :, t], v_cache[:, :, t] = k, v
    keys, values = k_cache[:, :, :t + 1], v_cache[:, :, :t + 1]             # (B, H, t+1, D)
    scores = xp.einsum("bhd,bhsd->bhs", q, keys) / math.sqrt(head_size)    # (B, H, t+1)
    a = softmax_ref(scores)
    y = xp.einsum("bhs,bhsd->bhd", a, values).reshape(B, C)                 # (B, C)
    x += y @ w.proj_w.T + w.proj_b
    h = layer_norm_forward_ref(x, w.ln2_w, w.ln2_b, eps)[0]
    u = h @ w.fc_w.T + w.fc_b                                               # (B, F)
    if gelu == "tanh":
        u = gelu_tanh_forward_ref(u)
    else:
        u = 0.5 * u * (1 + erf_ref(u / math.sqrt(2.0)))
    x += u @ w.fc2_w.T + w.fc2_b
    return x


# ---------------------------------------------------------------------------------------------
# (b) Numba CPU kernel
# ---------------------------------------------------------------------------------------------

@njit(inline="always")
def _linear_rows(a, weight, bias, out):
    """out = a W^T + b for the few rows of a (B, K); W (N, K), b (N,); out (B, N).
    Inlined into the (parallel) caller, so the product's prange runs on its threads."""
    few_rows_times_transposed_inline(a, weight, out)
    for r in range(a.shape[0]):
        o = out[r]
        for i in range(weight.shape[0]):
            o[i] += bias[i]


@njit(cache=True, fastmath=FASTMATH)
def _attend(q, keys, values, n, scale, y, s):
    """y (D,) = sum_j softmax_j(q . keys[j] * scale) values[j] over j < n; s: (>= n,) scratch."""
    m = as_type_of(scale, -np.inf)
    for j in range(n):
        kj = keys[j]
        acc = as_type_of(scale, 0.0)
        for d in range(q.shape[0]):
            acc += q[d] * kj[d]
        s[j] = acc * scale
        m = fmax(m, s[j])
    total = as_type_of(scale, 0.0)
    for j in range(n):
        e = exp_le0(s[j] - m)                    # <= 0: the max is subtracted first
        s[j] = e
        total += e
    y[:] = 0
    for j in range(n):
        p = s[j] / total
        vj = values[j]
        for d in range(y.shape[0]):
            y[d] += p * vj[d]


@njit(cache=True, fastmath=FASTMATH)
def _gelu_rows(u, exact):
    """u = gelu(u) in place: 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))), or with exact,
    0.5 u (1 + erf(u / sqrt 2))."""
    half, one = as_type_of(u[0, 0], 0.5), as_type_of(u[0, 0], 1.0)
    for r in range(u.shape[0]):
        ur = u[r]
        for i in range(ur.shape[0]):
            v = ur[i]
            if exact:
                g = erf_fast(v * as_type_of(v, 1.0 / math.sqrt(2.0)))
            else:
                g = tanh_fast(as_type_of(v, SQRT_2_OVER_PI)
                              * (v + as_type_of(v, GELU_CUBIC) * v * v * v))
            ur[i] = half * v * (one + g)


def _block_decode(x, w, k_cache, v_cache, t, n_head, eps, exact_gelu):
    B, C = x.shape
    head_size = C // n_head
    h = np.empty_like(x)                                         # LN output, then products
    mean, rstd = np.empty(B, x.dtype), np.empty(B, x.dtype)
    _ln_fwd_cpu(0, B, 1, x, w.ln1_w, w.ln1_b, True, True, eps, h, mean, rstd)
    qkv = np.empty((B, 3 * C), x.dtype)
    _linear_rows(h, w.attn_w, w.attn_b, qkv)                     # [q | k | v] (B, 3C)
    y = np.empty_like(x)                                         # heads side by side (B, C)
    s = np.empty(t + 1, x.dtype)
    scale = as_type_of(eps, 1.0 / math.sqrt(head_size))
    for b in range(B):
        for hd in range(n_head):
            lo = hd * head_size
            k_cache[b, hd, t] = qkv[b, C + lo:C + lo + head_size]
            v_cache[b, hd, t] = qkv[b, 2 * C + lo:2 * C + lo + head_size]
            _attend(qkv[b, lo:lo + head_size], k_cache[b, hd], v_cache[b, hd], t + 1, scale,
                    y[b, lo:lo + head_size], s)
    _linear_rows(y, w.proj_w, w.proj_b, h)
    x += h                                                       # first residual
    _ln_fwd_cpu(0, B, 1, x, w.ln2_w, w.ln2_b, True, True, eps, h, mean, rstd)
    u = np.empty((B, w.fc_w.shape[0]), x.dtype)                 # (B, F)
    _linear_rows(h, w.fc_w, w.fc_b, u)
    _gelu_rows(u, exact_gelu)
    _linear_rows(u, w.fc2_w, w.fc2_b, h)
    x += h                                                       # second residual


_block_decode_parallel = njit(cache=True, parallel=True, fastmath=FASTMATH)(_block_decode)
# The same loops on one thread (prange runs as range), for a child forked after numba's
# OpenMP layer started (_dispatch.prange_allowed); compiled there when first needed, not
# cached (one cache file per function name).
_block_decode_serial = njit(fastmath=FASTMATH)(_block_decode)


def _block_decode_cpu(x, w, k_cache, v_cache, t, n_head, eps, exact_gelu):
    kernel = _block_decode_parallel if D.prange_allowed() else _block_decode_serial
    kernel(x, w, k_cache, v_cache, t, n_head, eps, exact_gelu)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def _check(x, w, k_cache, v_cache, t, n_head, gelu):
    if x.ndim != 2:
        raise ValueError(f"gpt_block_decode: x must be (B, C), got shape {tuple(x.shape)}")
    B, C = x.shape
    if n_head < 1 or C % n_head:
        raise ValueError(f"gpt_block_decode: C = {C} channels do not split into {n_head} heads")
    if not isinstance(w, BlockWeights):
        raise TypeError("gpt_block_decode: weights must be a BlockWeights tuple")
    F_ = w.fc_w.shape[0] if w.fc_w.ndim == 2 else -1
    shapes = {"ln1_w": (C,), "ln1_b": (C,), "attn_w": (3 * C, C), "attn_b": (3 * C,),
              "proj_w": (C, C), "proj_b": (C,), "ln2_w": (C,), "ln2_b": (C,),
              "fc_w": (F_, C), "fc_b": (F_,), "fc2_w": (C, F_), "fc2_b": (C,)}
    for name, shape in shapes.items():
        a = getattr(w, name)
        if tuple(a.shape) != shape:
            raise ValueError(f"gpt_block_decode: {name} has shape {tuple(a.shape)}, expected "
                             f"{shape} for x of shape {tuple(x.shape)}")
    for name, cache in (("k_cache", k_cache), ("v_cache", v_cache)):
        if cache.ndim != 4 or cache.shape[:2] != (B, n_head) or cache.shape[3] != C // n_head:
            raise ValueError(f"gpt_block_decode: {name} must be (B, H, S, D) = ({B}, {n_head},"
                             f" S, {C // n_head}), got {tuple(cache.shape)}")
    if not 0 <= t < k_cache.shape[2]:
        raise IndexError(f"gpt_block_decode: position {t} is outside the cache of "
                         f"{k_cache.shape[2]} positions")
    if gelu not in GELUS:
        raise ValueError(f"gpt_block_decode: gelu must be one of {GELUS}, got {gelu!r}")
    D.check_float([("x", x), ("k_cache", k_cache), ("v_cache", v_cache)]
                  + [(name, getattr(w, name)) for name in BlockWeights._fields])


def gpt_block_decode(x, weights, k_cache, v_cache, t, n_head, eps=1e-5, gelu="tanh", *,
                     impl="auto"):
    """One pre-LN GPT block for the token at position t of each of B sequences.

    x: (B, C) the residual stream at t, UPDATED IN PLACE to the block's output;
    weights: BlockWeights; k_cache, v_cache: (B, H, S, D) holding positions < t, position t
    OVERWRITTEN; gelu: "tanh" (GPT-2) or "none" (exact). Returns x.
    The numba kernel runs for NumPy float arrays of at most FEW_ROWS rows, all C-contiguous;
    anything else takes the reference.
    """
    _check(x, weights, k_cache, v_cache, t, n_head, gelu)
    which = D.choose_impl(x, k_cache, v_cache, *weights, impl=impl)
    arrays = (x, k_cache, v_cache) + tuple(weights)
    if which != "cpu" or x.shape[0] > FEW_ROWS or not all(a.flags.c_contiguous for a in arrays):
        return block_decode_ref(x, weights, k_cache, v_cache, t, n_head, eps, gelu)
    _block_decode_cpu(x, weights, k_cache, v_cache, t, n_head, x.dtype.type(eps),
                      gelu == "none")
    return x


GPTWeights = namedtuple("GPTWeights", [
    "wte", "wpe",            # (V, C) token embeddings (also the tied output head), (S, C)
    "ln_f_w", "ln_f_b",      # (C,) the final LayerNorm
    "blocks",                # one BlockWeights per block
])


class GPTDecoder:
    """Greedy-or-sampled decoding of a pre-LN GPT with tied embeddings, one token per call.

    Holds a preallocated KV cache of block_size positions per block, filled from the caches
    of the model's Tensor forward over the prompt, and runs each new token through
    ``gpt_block_decode`` once per block, then the final LayerNorm and the tied head:

        x = wte[id] + wpe[t];   x = block(x) for each block;   logits = LN_f(x) wte^T

    The weights are checked once here, not at every token. models/gpt.py's forward is the
    unfused twin (tests compare logits and tokens).

        decoder = GPTDecoder(weights, n_head, eps, gelu, block_size, k_caches, v_caches)
        logits = decoder.step(ids)      # ids (B,) at position decoder.t -> logits (B, V)
    """

    @staticmethod
    def usable(logits):
        """NumPy float logits of few sequences: what the numba decoding kernel runs on."""
        return (type(logits) is np.ndarray and logits.dtype in D.FLOAT_DTYPES
                and logits.shape[0] <= FEW_ROWS)

    def __init__(self, weights, n_head, eps, gelu, block_size, k_caches, v_caches):
        B, H, self.t, head_size = k_caches[0].shape                   # t positions cached
        self.w, self.n_head, self.gelu = weights, n_head, gelu
        self.eps = weights.wte.dtype.type(eps)
        self.k, self.v = [], []
        for filled_k, filled_v in zip(k_caches, v_caches):
            for filled, store in ((filled_k, self.k), (filled_v, self.v)):
                buf = np.zeros((B, H, block_size, head_size), dtype=weights.wte.dtype)
                buf[:, :, :self.t] = filled                           # (B, H, S, D)
                store.append(buf)
        x = np.zeros((B, weights.wte.shape[1]), weights.wte.dtype)
        for blk, k, v in zip(weights.blocks, self.k, self.v):         # checked once
            _check(x, blk, k, v, 0, n_head, gelu)
        arrays = (x, weights.wte, weights.wpe, weights.ln_f_w, weights.ln_f_b)
        arrays += tuple(a for blk in weights.blocks for a in blk)
        self.fast = (D.choose_impl(*arrays) == "cpu"
                     and all(a.flags.c_contiguous for a in arrays))

    def step(self, ids):
        """Logits (B, V) of the next token after ids (B,) at position t; t advances by one."""
        w = self.w
        ids = np.asarray(ids)
        if ids.ndim == 2 and ids.shape[1] == 1:
            ids = ids[:, 0]                                           # (B, 1) -> (B,)
        if ids.shape != (self.k[0].shape[0],) or ids.dtype.kind not in "iu":
            raise ValueError(f"GPTDecoder.step takes one integer token per sequence, "
                             f"({self.k[0].shape[0]},), got {ids.dtype} {ids.shape}")
        bad = ids[(ids < 0) | (ids >= w.wte.shape[0])]
        if bad.size:
            raise IndexError(f"GPTDecoder.step: token id {int(bad[0])} is out of range for a "
                             f"vocabulary of {w.wte.shape[0]} (negative ids are not wrapped)")
        if not 0 <= self.t < w.wpe.shape[0]:
            raise IndexError(f"GPTDecoder: position {self.t} is outside the position table "
                             f"of {w.wpe.shape[0]}")
        x = w.wte[ids] + w.wpe[self.t]                                # (B, C)
        for blk, k, v in zip(w.blocks, self.k, self.v):
            if self.fast:
                _block_decode_cpu(x, blk, k, v, self.t, self.n_head, self.eps,
                                  self.gelu == "none")
            else:
                block_decode_ref(x, blk, k, v, self.t, self.n_head, self.eps, self.gelu)
        x = layer_norm_forward(x, w.ln_f_w, w.ln_f_b, self.eps)[0]    # (B, C)
        self.t += 1
        return _blas.matmul(x, w.wte.T)                               # (B, V) = x wte^T
