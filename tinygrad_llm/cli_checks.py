"""The checks of the ``tinygrad-llm`` command: every argument and the text's length are checked
before any work starts, and a mistake is a UsageError that main() prints as one line
(``tinygrad-llm: error: ...``, exit status 2). See cli.py for the commands.
"""
import argparse
import errno
import math
import os

from . import backend

DEBUG_ENV = "TINYGRAD_LLM_DEBUG"
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}


class UsageError(Exception):
    """A mistake in the command line or its input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (and a UsageError) like every other mistake."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _flag(name):
    return "--" + name.replace("_", "-")


# ----- checking the arguments before any work -----------------------------------------------

_POSITIVE = "an integer >= 1"
_CHECKS = {   # name -> (test, what it must be); options a command lacks are skipped
    "steps": (lambda v: v >= 1, _POSITIVE), "batch_size": (lambda v: v >= 1, _POSITIVE),
    "block_size": (lambda v: v >= 1, _POSITIVE), "n_layer": (lambda v: v >= 1, _POSITIVE),
    "n_head": (lambda v: v >= 1, _POSITIVE), "n_embd": (lambda v: v >= 1, _POSITIVE),
    "max_chars": (lambda v: v >= 1, _POSITIVE), "batches": (lambda v: v >= 1, _POSITIVE),
    "lr": (lambda v: v > 0 and math.isfinite(v), "a number > 0"),
    "warmup": (lambda v: v >= 0, "an integer >= 0"),
    "eval_interval": (lambda v: v >= 0, "an integer >= 0 (0: never)"),
    "checkpoint_interval": (lambda v: v >= 0, "an integer >= 0 (0: only at the end)"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "max_new_tokens": (lambda v: v >= 0, "an integer >= 0"),
    "temperature": (lambda v: v >= 0 and math.isfinite(v), "a number >= 0 (0: greedy)"),
    "top_k": (lambda v: v >= 0, "an integer >= 0 (0: off)"),
    "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "bucket_mb": (lambda v: v > 0 and math.isfinite(v), "a number > 0"),
}


def validate_args(args):
    """UsageError for the first argument that cannot work, before any data or model work."""
    for name, (ok, what) in _CHECKS.items():
        value = getattr(args, name, None)
        if value is not None and not ok(value):
            raise UsageError(f"{_flag(name)} must be {what}, got {value}")
    if getattr(args, "n_embd", None) and args.n_embd % args.n_head:
        raise UsageError(f"--n-embd ({args.n_embd}) must be divisible by --n-head "
                         f"({args.n_head})")
    if getattr(args, "tokenizer", None) == "bpe" and args.vocab_size < _min_bpe_vocab():
        raise UsageError(f"--vocab-size must be at least {_min_bpe_vocab()} for --tokenizer "
                         f"bpe (256 byte tokens and the special tokens), got {args.vocab_size}")
    if getattr(args, "encoding", None):
        try:
            b"a".decode(args.encoding, "ignore")   # LookupError: unknown or not a text codec
        except LookupError:
            raise UsageError(f"--encoding {args.encoding!r} is not a known text encoding "
                             f"(e.g. utf-8, latin-1, cp1252, utf-16)") from None
    if getattr(args, "data", None) and not os.path.exists(args.data):
        raise UsageError(f"--data {args.data}: no such file or folder")
    if getattr(args, "checkpoint", None) is not None:
        from .checkpoint import has_checkpoint
        if not os.path.isdir(args.checkpoint) and not has_checkpoint(args.checkpoint):
            raise UsageError(f"--checkpoint {args.checkpoint}: no checkpoint folder there "
                             f"(train writes one to <--out>/checkpoint)")
    if getattr(args, "prompt", None) == "":
        raise UsageError("--prompt is empty: give at least one character to continue from")
    if getattr(args, "out", None) and os.path.isfile(args.out):
        raise UsageError(f"--out {args.out} is a file; give a folder for the run")
    if getattr(args, "device", "cpu") != "cpu":
        try:
            backend.check_device(args.device)
        except RuntimeError as e:
            raise UsageError(str(e)) from None


def _min_bpe_vocab():
    from .data import DEFAULT_SPECIAL_TOKENS
    return 256 + len(DEFAULT_SPECIAL_TOKENS) + 1        # bytes, roles, <|endoftext|>


# ----- the text against the block size ---------------------------------------------------------

def _split_tokens(ids, val_fraction=0.1):
    n_val = max(int(len(ids) * val_fraction), 1)
    return ids[:-n_val], ids[-n_val:]


def _min_tokens(block_size):
    """The shortest token stream whose training and validation parts both hold a window."""
    n = block_size + 2
    while min(len(part) for part in _split_tokens(range(n))) < block_size + 2:
        n += 1
    return n


def _check_length(n, block_size, source, unit="tokens", of="--block-size"):
    """UsageError if ``n`` tokens (or an upper bound on them) cannot fill the windows."""
    if n < _min_tokens(block_size):
        fix = "a smaller --block-size" if of == "--block-size" else "another checkpoint"
        raise UsageError(f"{source} has {n:,} {unit}, too few for {of} {block_size} "
                         f"(a 90/10 training/validation split needs at least "
                         f"{_min_tokens(block_size):,} tokens): use a longer text or {fix}")
