"""The ``tinygrad-llm`` command: train, generate, evaluate, bench.

    tinygrad-llm train                      # the main job: a small GPT on the built-in corpus
    tinygrad-llm generate --checkpoint runs/gpt/checkpoint --prompt "The "
    tinygrad-llm evaluate --checkpoint runs/gpt/checkpoint
    tinygrad-llm bench                      # print the measured benchmark tables

``train`` builds the default corpus (the standard library's docstrings: real English text that
every Python installation carries) or reads ``--data`` (a text file or a folder of .txt files),
trains a tokenizer, trains the GPT with AdamW and a warmup + cosine schedule, saves a
checkpoint, writes the loss plot and prints generated text.
"""
import argparse
import os
import sys

import numpy as np

from . import backend


def _load_corpus(args):
    from .data import default_corpus, load_text
    if args.data:
        return load_text(args.data)
    return default_corpus(max_chars=args.max_chars)


def _build_tokenizer(text, args):
    from .data import ByteLevelBPETokenizer, CharTokenizer
    if args.tokenizer == "char":
        return CharTokenizer.from_corpus([text])
    return ByteLevelBPETokenizer.train([text], vocab_size=args.vocab_size)


def _split_tokens(ids, val_fraction=0.1):
    n_val = max(int(len(ids) * val_fraction), 1)
    return ids[:-n_val], ids[-n_val:]


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


def cmd_train(args):
    from .models import GPT, GPTConfig
    from .train import TrainConfig, train
    text = _load_corpus(args)
    print(f"corpus: {len(text):,} characters"
          + (f" from {args.data}" if args.data else " (standard-library docstrings)"))
    tokenizer = _build_tokenizer(text, args)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    train_ids, val_ids = _split_tokens(ids)
    print(f"tokenizer: {args.tokenizer}, vocabulary {tokenizer.vocab_size}; "
          f"{len(train_ids):,} training and {len(val_ids):,} validation tokens")
    config = GPTConfig(block_size=args.block_size, vocab_size=tokenizer.vocab_size,
                       n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                       dropout=0.0)
    from .creation import Generator
    model = GPT(config, generator=Generator(args.seed))
    if args.device != "cpu":
        model.to(args.device)
    print(f"model: GPT with {model.num_parameters():,} parameters "
          f"(n_layer={args.n_layer}, n_head={args.n_head}, n_embd={args.n_embd})")
    cfg = TrainConfig(max_steps=args.steps, learning_rate=args.lr, warmup_steps=args.warmup,
                      eval_interval=args.eval_interval, eval_batches=5, log_interval=10,
                      out_dir=args.out, seed=args.seed, progress=not args.no_progress,
                      weight_decay=0.1, grad_clip=1.0)
    result = train(model, batch_sampler(train_ids, args.block_size, args.batch_size,
                                        args.device),
                   cfg, get_val_batch=batch_sampler(val_ids, args.block_size,
                                                    args.batch_size, args.device),
                   tokenizer=tokenizer, resume=args.resume)
    val = result["best_val_loss"]
    print(f"done: {result['steps']} steps, {result['tokens_per_s']:,.0f} tokens/s, best "
          f"validation loss {val:.3f} (perplexity {np.exp(val):.1f})")
    print(f"checkpoint: {result['checkpoint']}   loss plot: {os.path.join(args.out, 'loss.png')}")
    prompt = args.prompt if args.prompt else text[:20]
    print(f"\n--- sample (prompt {prompt!r}) ---")
    _generate(model, tokenizer, prompt, args.max_new_tokens, args.temperature, args.top_k,
              None, args.seed, True, args.device)
    return result


def _generate(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed,
              use_cache, device="cpu"):
    from .creation import Generator
    ids = np.asarray([tokenizer.encode(prompt)], dtype=np.int64)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    emitted = []

    def stream(tokens):  # print each token as soon as it is chosen
        emitted.append(int(tokens[0]))
        text = tokenizer.decode(emitted)
        if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
            sys.stdout.write(text)
            sys.stdout.flush()
            emitted.clear()

    out = model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k,
                         top_p=top_p, generator=Generator(seed), use_cache=use_cache,
                         stream=stream)
    sys.stdout.write("\n")
    return tokenizer.decode(out[0].tolist())


def load_model(checkpoint):
    """A GPT and its tokenizer from a checkpoint folder written by ``train`` or from a
    Hugging Face GPT-2 folder (config.json with model_type "gpt2" + model.safetensors)."""
    import json
    from . import checkpoint as ck
    from .models import GPT, GPTConfig
    hf_config = os.path.join(checkpoint, "config.json")
    if os.path.exists(hf_config):
        with open(hf_config, encoding="utf-8") as f:
            if json.load(f).get("model_type") == "gpt2":
                from .models.gpt2_hf import load_gpt2_folder
                return load_gpt2_folder(checkpoint)
    info = ck.read_checkpoint(checkpoint)
    model = GPT(GPTConfig(**info["config"]["model_config"]))
    ck.check_state_dict(model.state_dict(), info["weights"], info["folder"])
    model.load_state_dict(info["weights"])
    return model, ck.load_tokenizer(checkpoint)


def cmd_generate(args):
    model, tokenizer = load_model(args.checkpoint)
    if args.device != "cpu":
        model.to(args.device)
    return _generate(model, tokenizer, args.prompt, args.max_new_tokens, args.temperature,
                     args.top_k, args.top_p, args.seed, not args.no_cache, args.device)


def cmd_evaluate(args):
    from .train import evaluate
    model, tokenizer = load_model(args.checkpoint)
    text = _load_corpus(args)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
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
    p = argparse.ArgumentParser(prog="tinygrad-llm", description=__doc__.splitlines()[0])
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
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--warmup", type=int, default=50)
    t.add_argument("--eval-interval", type=int, default=100)
    t.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    t.add_argument("--no-progress", action="store_true")
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
    for s in (t, g, e):
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "device", "cpu") != "cpu":
        try:
            backend.check_device(args.device)     # before any data or model work
        except RuntimeError as e:
            parser.error(str(e))                  # the message and exit status 2
    result = args.func(args)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
