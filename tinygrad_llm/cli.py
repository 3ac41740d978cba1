"""The ``tinygrad-llm`` command: train, generate, evaluate, bench.

    tinygrad-llm train                      # the main job: a small GPT on the built-in corpus
    tinygrad-llm generate --checkpoint runs/gpt/checkpoint --prompt "The "
    tinygrad-llm evaluate --checkpoint runs/gpt/checkpoint
    tinygrad-llm bench                      # print the measured benchmark tables

``train`` builds the default corpus (the standard library's docstrings: real English text that
every Python installation carries) or reads ``--data`` (a text file or a folder of .txt files),
trains a tokenizer, trains the GPT with AdamW and a warmup + cosine schedule, saves a
checkpoint, writes the loss plot and prints generated text. Ctrl-C (or SIGTERM) stops it at the
end of the step in flight with a checkpoint of exactly that state; ``--resume`` continues to
the same weights an uninterrupted run reaches (see tinygrad_llm/train.py). Exit status 130
(SIGINT) or 143 (SIGTERM); a second Ctrl-C aborts at once, keeping the last good checkpoint.

Errors: a mistake in the arguments or the input (a missing file, a binary file, a text too
short for --block-size, a bad checkpoint, an empty prompt, ...) prints one line,
``tinygrad-llm: error: <what to change>``, and exits with status 2. A checkpoint that cannot be
written (a full disk) prints one line and exits with 1. ``--debug`` (or the environment variable
TINYGRAD_LLM_DEBUG=1) also prints the traceback.

The argument checks live in cli_checks.py; loading a model and generating text (the
``generate`` command) in cli_generate.py.
"""
import argparse
import hashlib
import os
import sys

import numpy as np

from .cli_checks import (DEBUG_ENV, _DISK_FULL, UsageError, _check_length, _flag, _Parser,
                         _split_tokens, validate_args)
from .cli_generate import (_generate, _load_for_generation, cmd_generate,  # noqa: F401
                           generation_masks, load_model)


# ----- data ---------------------------------------------------------------------------------

def _load_corpus(args):
    from .data import TextDecodeError, default_corpus, load_text
    if not args.data:
        return default_corpus(max_chars=args.max_chars)
    try:
        text = load_text(args.data, encoding=args.encoding or "utf-8")
    except TextDecodeError as e:
        hint = ("if the file is text in another encoding, pass --encoding (e.g. --encoding "
                "latin-1)")
        if b"\x00" in e.object[:65536]:
            hint = ("it looks like a binary file, not text (it holds NUL bytes); if it is "
                    "UTF-16 text, pass --encoding utf-16")
        raise UsageError(f"{e.path}: not valid {e.encoding} text at byte offset {e.start} "
                         f"(line {e.line}, {e.bad_bytes()}); {hint}") from None
    except ValueError:       # a folder without .txt files
        raise UsageError(f"--data {args.data}: the folder holds no .txt files") from None
    except OSError as e:
        raise UsageError(f"--data {args.data}: {e.strerror or e}") from None
    if not text.strip():
        raise UsageError(f"--data {args.data}: the text is empty")
    return text


def _build_tokenizer(text, args):
    from .data import ByteLevelBPETokenizer, CharTokenizer
    if args.tokenizer == "char":
        return CharTokenizer.from_corpus([text])
    return ByteLevelBPETokenizer.train([text], vocab_size=args.vocab_size)


def batch_sampler(ids, block_size, batch_size, device="cpu"):
    """get_batch(rng) -> (x, y): random windows of the token stream, y shifted by one."""
    from .tensor import Tensor
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) <= block_size + 1:
        raise ValueError(f"the text has {len(ids)} tokens, too few for block_size {block_size}")

    def get_batch(rng):
        starts = rng.integers(0, len(ids) - block_size - 1, batch_size)
        x = np.stack([ids[s:s + block_size] for s in starts])         # (B, T)
        y = np.stack([ids[s + 1:s + 1 + block_size] for s in starts])  # (B, T)
        return Tensor(x, device=device), Tensor(y, device=device)
    return get_batch


# ----- train --------------------------------------------------------------------------------

_RESUMED_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")


def _resume_tokenizer(args, ckpt_dir):
    """The checkpoint's tokenizer, after checking that the model flags match the checkpoint."""
    from . import checkpoint as ck
    try:
        info = ck.read_checkpoint(ckpt_dir)
        tokenizer = ck.load_tokenizer(ckpt_dir)
    except (OSError, ValueError) as e:
        raise UsageError(f"--resume: cannot read the checkpoint: {e}") from None
    kinds = {"char": "char", "bpe": "byte_bpe"}                 # flag value -> tokenizer.kind
    if tokenizer.kind != kinds[args.tokenizer]:
        saved = next((k for k, v in kinds.items() if v == tokenizer.kind), tokenizer.kind)
        raise UsageError(f"--resume: the checkpoint in {ckpt_dir} uses --tokenizer {saved}; "
                         f"pass the same value (or another --out)")
    saved = info["config"].get("model_config", {})
    differ = [f"{_flag(k)} {saved[k]}" for k in _RESUMED_FIELDS
              if k in saved and saved[k] != getattr(args, k)]
    if differ:
        raise UsageError(f"--resume: the checkpoint in {ckpt_dir} was trained with "
                         f"{' '.join(differ)}; pass the same values (or another --out)")
    return tokenizer


def cmd_train(args):
    from . import checkpoint as ck
    from .distributed import training as data_parallel
    from .models import GPT, GPTConfig
    from .train import TrainConfig, train
    # under mpiexec -n N: one data-parallel run; global batch = --batch-size x N (see
    # docs/DISTRIBUTED.md); rank 0 alone prints, logs and checkpoints
    world = data_parallel.start("nccl" if args.device == "cuda" else "mpi")
    say = print if data_parallel.is_main_process() else (lambda *a, **k: None)
    ckpt_dir = os.path.join(args.out, "checkpoint")
    resuming = args.resume and ck.has_checkpoint(ckpt_dir)
    tokenizer = _resume_tokenizer(args, ckpt_dir) if resuming else None
    text = _load_corpus(args)
    source = f"--data {args.data}" if args.data else "the built-in corpus"
    # an upper bound on the tokens (one per character or byte at most), before any work
    if args.tokenizer == "char":
        _check_length(len(text), args.block_size, source, "characters")
    else:
        _check_length(len(text.encode("utf-8", "replace")), args.block_size, source, "bytes")
    say(f"corpus: {len(text):,} characters"
        + (f" from {args.data}" if args.data else " (standard-library docstrings)"))
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {args.out}: cannot create the folder: {e.strerror}") from None
    tokenizer = tokenizer or _build_tokenizer(text, args)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    _check_length(len(ids), args.block_size, source)
    train_ids, val_ids = _split_tokens(ids)
    say(f"tokenizer: {args.tokenizer}, vocabulary {tokenizer.vocab_size}; "
        f"{len(train_ids):,} training and {len(val_ids):,} validation tokens")
    data_parallel.same_on_every_rank("the tokenized corpus (sha256)",
                                     hashlib.sha256(ids.tobytes()).hexdigest())
    config = GPTConfig(block_size=args.block_size, vocab_size=tokenizer.vocab_size,
                       n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                       dropout=args.dropout)
    from .creation import Generator, manual_seed
    manual_seed(args.seed)      # the default generator too (checkpointed, like every stream)
    model = GPT(config, generator=Generator(args.seed))
    if args.device != "cpu":
        model.to(args.device)
    say(f"model: GPT with {model.num_parameters():,} parameters "
        f"(n_layer={args.n_layer}, n_head={args.n_head}, n_embd={args.n_embd})")
    run_model, eval_fn = model, None
    get_val_batch = batch_sampler(val_ids, args.block_size, args.batch_size, args.device)
    if world > 1:
        from .distributed import DistributedDataParallel
        run_model = DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
        val_x, val_y = data_parallel.validation_windows(val_ids, args.block_size)
        get_val_batch = None              # the whole validation text, sharded, then reduced

        def eval_fn(m):
            return data_parallel.evaluate_sharded(m, val_x, val_y, args.batch_size,
                                                  args.device)
        say(f"data-parallel: {world} ranks x batch {args.batch_size} = global batch "
            f"{world * args.batch_size}")
    # special tokens that occur in the text are text the model learns; the others are masked
    # out of generation (the checkpoint remembers which)
    seen = sorted(set(tokenizer.all_special_ids) & set(np.unique(ids).tolist()))
    cfg = TrainConfig(max_steps=args.steps, learning_rate=args.lr, warmup_steps=args.warmup,
                      eval_interval=args.eval_interval, eval_batches=5, log_interval=10,
                      out_dir=args.out, seed=args.seed, progress=not args.no_progress,
                      weight_decay=0.1, grad_clip=1.0,
                      checkpoint_interval=args.checkpoint_interval,
                      extra={"special_ids_in_text": seen})
    get_batch = data_parallel.sharded_batches(batch_sampler(
        train_ids, args.block_size, args.batch_size * world, args.device))
    result = train(run_model, get_batch, cfg, get_val_batch=get_val_batch, eval_fn=eval_fn,
                   tokenizer=tokenizer, resume=args.resume, log=say)
    val = result["best_val_loss"]
    say(f"done: {result['steps']} steps, {result['tokens_per_s']:,.0f} tokens/s, best "
        f"validation loss {val:.3f} (perplexity {np.exp(val):.1f})")
    say(f"checkpoint: {result['checkpoint']}   loss plot: {os.path.join(args.out, 'loss.png')}")
    prompt = args.prompt if args.prompt else text[:20]
    if not data_parallel.is_main_process():
        return result
    say(f"\n--- sample (prompt {prompt!r}) ---")
    _generate(model, tokenizer, prompt, args.max_new_tokens, args.temperature, args.top_k,
              None, args.seed, True, args.device, trained_special_ids=seen)
    return result


# ----- evaluate, bench ----------------------------------------------------------------------

def cmd_evaluate(args):
    from .train import evaluate
    model, tokenizer, _ = _load_for_generation(args)
    text = _load_corpus(args)
    source = f"--data {args.data}" if args.data else "the built-in corpus"
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    _check_length(len(ids), model.config.block_size, source,
                  of="the checkpoint's block size")
    _, val_ids = _split_tokens(ids)
    get = batch_sampler(val_ids, model.config.block_size, args.batch_size)
    loss = evaluate(model, get, args.batches, np.random.default_rng(args.seed))
    print(f"validation loss {loss:.4f}  perplexity {np.exp(loss):.2f}")
    return loss


def cmd_bench(args):
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "benchmarks", "README.md")
    if not os.path.exists(path):
        print("benchmarks/README.md not found: run the scripts in benchmarks/ from a source "
              "checkout (python benchmarks/bench_*.py)")
        return 1
    with open(path, encoding="utf-8") as f:
        print(f.read())
    return 0


def parse_with_presets(parser, argv, full, quick):
    """Add one --option per key of ``full`` (its type from the default) and parse ``argv``;
    every option not given takes its value from ``quick`` when --quick is set (the parser must
    define it), else from ``full``. The examples use this for their size knobs."""
    for key, value in full.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=None)
    args = parser.parse_args(argv)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def build_parser():
    p = _Parser(prog="tinygrad-llm", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true",
                   help=f"show the traceback of errors (or set {DEBUG_ENV}=1)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a small GPT (the main job)")
    t.add_argument("--data", help="a text file or folder of .txt files (default: built-in)")
    t.add_argument("--max-chars", type=int, default=1_000_000, help="corpus size limit")
    t.add_argument("--tokenizer", choices=["bpe", "char"], default="bpe")
    t.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary size")
    t.add_argument("--out", default="runs/gpt", help="output folder")
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--block-size", type=int, default=128)
    t.add_argument("--n-layer", type=int, default=4)
    t.add_argument("--n-head", type=int, default=4)
    t.add_argument("--n-embd", type=int, default=128)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--warmup", type=int, default=50)
    t.add_argument("--eval-interval", type=int, default=100)
    t.add_argument("--checkpoint-interval", type=int, default=0,
                   help="steps between checkpoints (0: only at the end and on Ctrl-C)")
    t.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--bucket-mb", type=float, default=1.0,
                   help="under mpiexec: gradient all-reduce bucket size in MiB")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate text from a checkpoint")
    g.add_argument("--checkpoint", required=True)
    g.add_argument("--prompt", default="The ")
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--no-cache", action="store_true", help="re-read the prefix every step")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="validation loss and perplexity of a checkpoint")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", help="a text file or folder (default: built-in corpus)")
    e.add_argument("--max-chars", type=int, default=1_000_000)
    e.add_argument("--batches", type=int, default=20)
    e.add_argument("--batch-size", type=int, default=16)
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("bench", help="print the benchmark tables")
    b.set_defaults(func=cmd_bench)

    for s in (t, g):
        s.add_argument("--max-new-tokens", type=int, default=200)
        s.add_argument("--temperature", type=float, default=0.8)
        s.add_argument("--top-k", type=int, default=40)
    t.add_argument("--prompt", default=None)
    for s in (t, e):
        s.add_argument("--encoding", default=None,
                       help="text encoding of --data (default utf-8), e.g. latin-1")
    for s in (t, g, e):
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    for s in (t, g, e, b):     # --debug after the command too; SUPPRESS keeps an earlier one
        s.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
    return p


def main(argv=None):
    """Run the command; returns the exit status (0, 1, 2, or 128 + signal)."""
    from .checkpoint import CheckpointWriteError
    from .train import TrainingAborted, TrainingInterrupted
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0") or "--debug" in argv

    def fail(message, status):
        if debug:
            import traceback
            traceback.print_exc()
        print(f"tinygrad-llm: error: {message}", file=sys.stderr)
        return _end_job(f"error: {message}", status)

    def _end_job(message, status):
        """Under mpiexec, an error that may have hit this rank alone ends the whole job (the
        others would wait for it); otherwise just the exit status."""
        from .distributed.training import abort_job
        abort_job(f"tinygrad-llm: {message}", status)
        return status

    try:
        args = build_parser().parse_args(argv)
        validate_args(args)
        result = args.func(args)
    except UsageError as e:
        return fail(e, 2)
    except CheckpointWriteError as e:
        return fail(e, 1)
    except OSError as e:
        if e.errno not in _DISK_FULL:
            raise
        return fail(f"{e.strerror}: {e.filename or 'writing the run'}", 1)
    except TrainingInterrupted as e:    # train() has printed its one line
        return e.exit_code
    except TrainingAborted as e:
        print(f"tinygrad-llm: {e}: stopped at once, nothing saved; the last good "
              f"checkpoint is untouched", file=sys.stderr)
        return _end_job(str(e), e.exit_code)
    except KeyboardInterrupt:
        print("tinygrad-llm: interrupted", file=sys.stderr)
        return _end_job("interrupted", 130)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
