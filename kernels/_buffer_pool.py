"""Reused memory for the kernels' large NumPy outputs: a small CPU caching allocator.

Why: a fresh NumPy array of more than a few hundred KB comes either from a new ``mmap`` or
from heap memory that glibc has just given back to the kernel, so the first write to each of
its pages is a page fault. A training step allocates the same large shapes every step (gates,
activations, logits, their gradients), thousands of faults per step (benchmarks/README.md has
the counts). The kernels therefore take their large outputs from this pool, which
keeps every buffer it has handed out and hands it out again once nobody uses it any more.

"Nobody uses it" is CPython's reference count: a buffer is free when the only reference left is
the pool's own list entry. Every array made from a pooled buffer (the view the caller gets, any
reshape or slice of it, a Tensor holding one of those) keeps the buffer alive through its
``.base`` chain, so a buffer in use is never handed out twice. (Raw addresses taken with
``.ctypes.data`` and kept after the array is gone are not protected, as with any freed memory.)

    take(nbytes)   a uint8 buffer of exactly nbytes: a free pooled one of that size, else
                   the front of a free one up to SPARE_RATIO times larger, else a new one
    clear()        drop every pooled buffer (its memory is unmapped once no array uses it)
    is_pool_buffer(buf)  whether buf is one of them
    set_enabled(b) switch pooling on or off (off: ``take`` is np.empty), returns the old state

Only buffers of at least MIN_BYTES are pooled (smaller ones come from the heap without
faults), at most PER_SIZE of one byte size. A size that no ``take`` has asked for during the
last WINDOW takes is dropped (a training step takes each of its sizes every step; a size used
once, such as a longer prompt, goes soon), and so are the least recently used sizes while the
pool holds more than MAX_BYTES. Each pooled buffer is a mapping of its own (``mmap``), so that
long-lived buffers never pin and fragment glibc's heap. A lock makes ``take`` safe to call from
several threads (the kernels' own worker threads never allocate, but a user's threads may run
ops).
"""
import mmap
import sys
import threading
from collections import OrderedDict

import numpy as np

MIN_BYTES = 1 << 18          # 256 KiB
HUGE_BYTES = 1 << 22         # from 4 MiB on, ask for transparent huge pages (as NumPy does)
PER_SIZE = 64                # buffers of one size (a GPT step holds 23 of its 2 MiB at once)
SPARE_RATIO = 4              # a free buffer up to this many times larger serves a request
WINDOW = 4096                # takes after which an unused size is dropped
MAX_BYTES = 1 << 30          # 1 GiB pooled at most

_buffers = OrderedDict()     # nbytes -> [uint8 arrays], least recently used size first
_last_take = {}              # nbytes -> value of _takes when that size was last asked for
_takes = 0
_total = 0
_enabled = True
_lock = threading.Lock()
# sys.getrefcount of an object referenced only by a list entry, measured the way take() asks
# (CPython versions differ in the temporary references a call adds).
_probe = [object()]
_FREE = sys.getrefcount(_probe[0])
del _probe


def take(nbytes):
    """A C-contiguous uint8 array of ``nbytes`` bytes, contents undefined."""
    if not _enabled or nbytes < MIN_BYTES:
        return np.empty(nbytes, np.uint8)
    with _lock:
        return _take_locked(nbytes)


def _take_locked(nbytes):
    global _takes, _total
    _takes += 1
    _last_take[nbytes] = _takes
    same = _buffers.setdefault(nbytes, [])
    _buffers.move_to_end(nbytes)
    for i in range(len(same)):
        if sys.getrefcount(same[i]) == _FREE:      # only the list entry holds it
            buf = same[i]
            break
    else:
        spare = _free_larger(nbytes)
        if spare is not None:
            buf = spare[:nbytes]                  # the front of an idle, larger buffer
        elif len(same) < PER_SIZE:
            buf = _new_buffer(nbytes)
            same.append(buf)
            _total += nbytes
        else:
            buf = np.empty(nbytes, np.uint8)      # all in use: an unpooled one
    _evict()
    return buf


def _free_larger(nbytes):
    """The smallest free pooled buffer of more than nbytes and at most SPARE_RATIO times as
    many, or None. Lending it keeps memory the pool already holds in use, instead of mapping
    more while it idles (a training step's first backward asks for the weight gradients'
    sizes while the forward's larger activations lie free)."""
    best = None
    for size, bufs in _buffers.items():
        if nbytes < size <= nbytes * SPARE_RATIO and (best is None or size < best.nbytes):
            for i in range(len(bufs)):
                if sys.getrefcount(bufs[i]) == _FREE:
                    best = bufs[i]
                    break
    return best


def is_pool_buffer(buf):
    """True when ``buf`` is one of the pool's own buffers (the base of the arrays it hands
    out)."""
    return any(b is buf for b in _buffers.get(buf.nbytes, ()))


def _new_buffer(nbytes):
    """A buffer in a mapping of its own. Pooled buffers live long; inside glibc's heap they
    would pin it and fragment it (RSS crept up by ~70 MiB over 1,000 GPT steps that way, and
    stayed flat with separate mappings)."""
    region = mmap.mmap(-1, nbytes)
    if nbytes >= HUGE_BYTES and hasattr(mmap, "MADV_HUGEPAGE"):
        region.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(region, np.uint8)


def _evict():
    """Drop the least recently used sizes: idle for WINDOW takes, or beyond MAX_BYTES."""
    global _total
    while _buffers:
        oldest = next(iter(_buffers))
        if _last_take[oldest] > _takes - WINDOW and _total <= MAX_BYTES:
            break
        dropped = _buffers.pop(oldest)
        del _last_take[oldest]
        _total -= oldest * len(dropped)


def clear():
    """Forget every pooled buffer (arrays still in use stay valid: they hold their memory)."""
    global _total
    with _lock:
        _buffers.clear()
        _last_take.clear()
        _total = 0


def set_enabled(enabled):
    """Turn pooling on or off; returns the previous setting. Off also clears the pool."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    if not _enabled:
        clear()
    return previous


def pooled_bytes():
    """Bytes held by the pool (in use or free)."""
    return _total
