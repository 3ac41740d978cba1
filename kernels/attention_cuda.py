"""(c) The ``@cuda.jit`` attention kernels and their launchers (split from attention.py).

Shape legend as in attention.py: q (B, H, Tq, D); k, v (B, H, Tk, D); lse (B, H, Tq).

A simple flash-attention layout that also runs in numba's CUDA simulator (no warp shuffles):
  forward   one thread per query row, TILE keys/values staged in shared memory per step,
            online softmax (running max m, running sum lsum) in registers; never stores S.
  backward  two kernels, so that no atomics are needed:
            dk/dv: one thread per key row, looping over query tiles (Q, dO, lse, Di staged);
            dq:    one thread per query row, looping over key tiles (K, V staged).
Head size D is limited to MAX_D (the per-thread register arrays have a fixed size).
Masks are read as in the CPU kernel: ``mask`` is a 4-D array whose axes are 1 or full size,
``kpm`` a (B, Tk) bool array; ``has_mask`` / ``has_kpm`` say whether they are real.
"""
import functools
import math

import numpy as np

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._cuda_utils import cuda, cuda_jit

MAX_D = 128
# Keys (forward, dq) or queries (dk/dv) staged in shared memory per step. Each kernel holds two
# (TILE, MAX_D) tiles: 2 * 32 * 128 * 4 B = 32 KiB in float32; float64 takes half the rows
# (2 * 16 * 128 * 8 B = 32 KiB), since 32 float64 rows (64 KiB) exceed the 48 KiB of static
# shared memory a CUDA block may declare (ptxas refuses to build the kernel).
TILES = {"f": 32, "d": 16}
SHARED_LIMIT = 48 * 1024
MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y, which holds B * H


@functools.lru_cache(maxsize=None)
def _kernels(dtype_char):
    acc = np.float32 if dtype_char == "f" else np.float64
    TILE = TILES[dtype_char]      # a compile-time constant of the closures below
    zero = acc(0.0)
    ninf = acc(-np.inf)

    @cuda_jit(device=True)
    def score(s, b, h, i, j, tq, tk, causal, kpm, has_kpm, mask, has_mask):
        """Add the additive mask to one scaled score and hide masked keys (-inf)."""
        if has_mask:
            s += mask[b if mask.shape[0] > 1 else 0, h if mask.shape[1] > 1 else 0,
                      i if mask.shape[2] > 1 else 0, j if mask.shape[3] > 1 else 0]
        if has_kpm and kpm[b, j]:
            s = ninf
        if causal and j > i + (tk - tq):
            s = ninf
        return s

    @cuda_jit
    def fwd(q, k, v, out, lse, scale, causal, kpm, has_kpm, mask, has_mask):
        nh, tq, d = q.shape[1], q.shape[2], q.shape[3]
        tk = k.shape[2]
        b = cuda.blockIdx.y // nh
        h = cuda.blockIdx.y % nh
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        i = cuda.blockIdx.x * nt + tid
        ks = cuda.shared.array((TILE, MAX_D), dtype=acc)
        vs = cuda.shared.array((TILE, MAX_D), dtype=acc)
        qr = cuda.local.array(MAX_D, dtype=acc)
        o = cuda.local.array(MAX_D, dtype=acc)
        sl = cuda.local.array(TILE, dtype=acc)
        valid = i < tq
        for dd in range(d):
            qr[dd] = q[b, h, i, dd] * scale if valid else zero
            o[dd] = zero
        m = ninf
        lsum = zero
        i_last = min(cuda.blockIdx.x * nt + nt, tq) - 1
        j_end = min(tk, i_last + (tk - tq) + 1) if causal else tk     # same for the block
        for j0 in range(0, j_end, TILE):
            for r in range(tid, TILE, nt):                             # stage K, V tiles
                for dd in range(d):
                    ks[r, dd] = k[b, h, j0 + r, dd] if j0 + r < tk else zero
                    vs[r, dd] = v[b, h, j0 + r, dd] if j0 + r < tk else zero
            cuda.syncthreads()
            if valid:
                nk = min(TILE, j_end - j0)
                mx = ninf
                for c in range(nk):
                    s = zero
                    for dd in range(d):
                        s += qr[dd] * ks[c, dd]
                    s = score(s, b, h, i, j0 + c, tq, tk, causal, kpm, has_kpm, mask,
                              has_mask)
                    sl[c] = s
                    mx = max(mx, s)
                m_new = max(m, mx)
                if m_new != ninf:
                    alpha = math.exp(m - m_new)                        # exp(-inf) = 0
                    lsum *= alpha
                    for dd in range(d):
                        o[dd] *= alpha
                    for c in range(nk):
                        p = math.exp(sl[c] - m_new)
                        lsum += p
                        for dd in range(d):
                            o[dd] += p * vs[c, dd]
                    m = m_new
            cuda.syncthreads()
        if valid:
            inv = 1 / lsum if lsum > 0 else zero
            for dd in range(d):
                out[b, h, i, dd] = o[dd] * inv
            lse[b, h, i] = m + math.log(lsum) if lsum > 0 else ninf

    @cuda_jit
    def bwd_dkdv(q, k, v, lse, di, dout, dk, dv, scale, causal, kpm, has_kpm, mask,
                 has_mask):
        nh, tq, d = q.shape[1], q.shape[2], q.shape[3]
        tk = k.shape[2]
        b = cuda.blockIdx.y // nh
        h = cuda.blockIdx.y % nh
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        j = cuda.blockIdx.x * nt + tid
        qs = cuda.shared.array((TILE, MAX_D), dtype=acc)
        dos = cuda.shared.array((TILE, MAX_D), dtype=acc)
        ls = cuda.shared.array(TILE, dtype=acc)
        ds_ = cuda.shared.array(TILE, dtype=acc)
        kr = cuda.local.array(MAX_D, dtype=acc)
        vr = cuda.local.array(MAX_D, dtype=acc)
        dka = cuda.local.array(MAX_D, dtype=acc)
        dva = cuda.local.array(MAX_D, dtype=acc)
        valid = j < tk
        for dd in range(d):
            kr[dd] = k[b, h, j, dd] if valid else zero
            vr[dd] = v[b, h, j, dd] if valid else zero
            dka[dd] = zero
            dva[dd] = zero
        # causal: query i sees key j only when i >= j - (Tk - Tq)
        i_start = max(cuda.blockIdx.x * nt - (tk - tq), 0) if causal else 0
        for i0 in range(i_start, tq, TILE):
            for r in range(tid, TILE, nt):                             # stage Q, dO, lse, Di
                ok = i0 + r < tq
                for dd in range(d):
                    qs[r, dd] = q[b, h, i0 + r, dd] if ok else zero
                    dos[r, dd] = dout[b, h, i0 + r, dd] if ok else zero
                ls[r] = lse[b, h, i0 + r] if ok else ninf
                ds_[r] = di[b, h, i0 + r] if ok else zero
            cuda.syncthreads()
            if valid:
                for c in range(min(TILE, tq - i0)):
                    if ls[c] == ninf:                                  # fully masked row
                        continue
                    s = zero
                    dp = zero
                    for dd in range(d):
                        s += qs[c, dd] * kr[dd]
                        dp += dos[c, dd] * vr[dd]
                    s = score(s * scale, b, h, i0 + c, j, tq, tk, causal, kpm, has_kpm,
                              mask, has_mask)
                    p = math.exp(s - ls[c])
                    dsc = p * (dp - ds_[c]) * scale
                    for dd in range(d):
                        dva[dd] += p * dos[c, dd]
                        dka[dd] += dsc * qs[c, dd]
            cuda.syncthreads()
        if valid:
            for dd in range(d):
                dk[b, h, j, dd] = dka[dd]
                dv[b, h, j, dd] = dva[dd]

    @cuda_jit
    def bwd_dq(q, k, v, lse, di, dout, dq, scale, causal, kpm, has_kpm, mask, has_mask):
        nh, tq, d = q.shape[1], q.shape[2], q.shape[3]
        tk = k.shape[2]
        b = cuda.blockIdx.y // nh
        h = cuda.blockIdx.y % nh
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        i = cuda.blockIdx.x * nt + tid
        ks = cuda.shared.array((TILE, MAX_D), dtype=acc)
        vs = cuda.shared.array((TILE, MAX_D), dtype=acc)
        qr = cuda.local.array(MAX_D, dtype=acc)
        dor = cuda.local.array(MAX_D, dtype=acc)
        dqa = cuda.local.array(MAX_D, dtype=acc)
        valid = i < tq
        for dd in range(d):
            qr[dd] = q[b, h, i, dd] if valid else zero
            dor[dd] = dout[b, h, i, dd] if valid else zero
            dqa[dd] = zero
        row_lse = lse[b, h, i] if valid else ninf
        row_di = di[b, h, i] if valid else zero
        i_last = min(cuda.blockIdx.x * nt + nt, tq) - 1
        j_end = min(tk, i_last + (tk - tq) + 1) if causal else tk
        for j0 in range(0, j_end, TILE):
            for r in range(tid, TILE, nt):
                for dd in range(d):
                    ks[r, dd] = k[b, h, j0 + r, dd] if j0 + r < tk else zero
                    vs[r, dd] = v[b, h, j0 + r, dd] if j0 + r < tk else zero
            cuda.syncthreads()
            if valid and row_lse != ninf:
                for c in range(min(TILE, j_end - j0)):
                    s = zero
                    dp = zero
                    for dd in range(d):
                        s += qr[dd] * ks[c, dd]
                        dp += dor[dd] * vs[c, dd]
                    s = score(s * scale, b, h, i, j0 + c, tq, tk, causal, kpm, has_kpm,
                              mask, has_mask)
                    dsc = math.exp(s - row_lse) * (dp - row_di) * scale
                    for dd in range(d):
                        dqa[dd] += dsc * ks[c, dd]
            cuda.syncthreads()
        if valid:
            for dd in range(d):
                dq[b, h, i, dd] = dqa[dd]

    return fwd, bwd_dkdv, bwd_dq


def shared_bytes(dtype_char):
    """Static shared memory of the largest kernel (dk/dv): two tiles plus two TILE vectors."""
    tile, size = TILES[dtype_char], np.dtype(dtype_char).itemsize
    return (2 * tile * MAX_D + 2 * tile) * size


def _grid(n_rows, batch_heads):
    if batch_heads > MAX_GRID_Y:
        raise ValueError(f"the CUDA attention kernels take B * H <= {MAX_GRID_Y} (grid.y), got "
                         f"B * H = {batch_heads}; split the batch")
    tpb = 32 if D.cudasim_enabled() else 64
    return ((n_rows + tpb - 1) // tpb, batch_heads), tpb


def _check_head_size(d):
    if d > MAX_D:
        raise ValueError(f"the CUDA attention kernel supports head size D <= {MAX_D}, got {d}")


def attention_forward_cuda(q, k, v, out, lse, scale, causal, kpm, has_kpm, mask, has_mask):
    """Launch the forward kernel; out (B,H,Tq,D) and lse (B,H,Tq) are overwritten."""
    _check_head_size(q.shape[-1])
    fwd = _kernels(q.dtype.char)[0]
    grid, tpb = _grid(q.shape[2], q.shape[0] * q.shape[1])
    fwd[grid, tpb](q, k, v, out, lse, scale, causal, kpm, has_kpm, mask, has_mask)


def attention_backward_cuda(q, k, v, out, lse, dout, dq, dk, dv, scale, causal, kpm, has_kpm,
                            mask, has_mask):
    """Launch the two backward kernels; dq, dk, dv are overwritten."""
    _check_head_size(q.shape[-1])
    xp = get_array_module(q)
    _, bwd_dkdv, bwd_dq = _kernels(q.dtype.char)
    di = xp.ascontiguousarray((dout * out).sum(axis=-1))           # (B, H, Tq)
    bh = q.shape[0] * q.shape[1]
    grid, tpb = _grid(k.shape[2], bh)
    bwd_dkdv[grid, tpb](q, k, v, lse, di, dout, dk, dv, scale, causal, kpm, has_kpm, mask,
                        has_mask)
    grid, tpb = _grid(q.shape[2], bh)
    bwd_dq[grid, tpb](q, k, v, lse, di, dout, dq, scale, causal, kpm, has_kpm, mask, has_mask)
