"""The generating side of the ``tinygrad-llm`` command: loading a model for ``generate`` and
``evaluate`` (a checkpoint written by ``train`` or a Hugging Face GPT-2 folder), the special
tokens it may emit, and printing the generated text token by token. See cli.py for the
commands; everything here is importable from ``tinygrad_llm.cli`` too.
"""
import os
import sys

import numpy as np

from .cli_checks import UsageError


def generation_masks(tokenizer, trained_special_ids=()):
    """(suppress_tokens, eos_token_id) for generating with ``tokenizer``: special tokens the
    model never saw in its training text are masked out; eos ends generation if it was seen."""
    trained = set(trained_special_ids)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id in trained else None
    return [i for i in tokenizer.all_special_ids if i not in trained], eos


def _generate(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed,
              use_cache, device="cpu", trained_special_ids=()):
    from .creation import Generator
    ids = np.asarray([tokenizer.encode(prompt)], dtype=np.int64)
    unknown = tokenizer.unk_token_id
    if unknown is not None and unknown in ids and tokenizer.unk_token not in prompt:
        print(f"tinygrad-llm: warning: some characters of the prompt are not in the "
              f"vocabulary; they become {tokenizer.unk_token}", file=sys.stderr)
    suppress, eos = generation_masks(tokenizer, trained_special_ids)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    emitted = []

    def stream(tokens):  # print each token as soon as it is chosen
        if eos is not None and int(tokens[0]) == eos:
            return
        emitted.append(int(tokens[0]))
        text = tokenizer.decode(emitted)
        if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
            sys.stdout.write(text)
            sys.stdout.flush()
            emitted.clear()

    out = model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k or None,
                         top_p=top_p, generator=Generator(seed), use_cache=use_cache,
                         stream=stream, eos_token_id=eos, suppress_tokens=suppress)
    sys.stdout.write("\n")
    return tokenizer.decode([i for i in out[0].tolist() if i != eos])


def _is_gpt2_folder(folder):
    """Whether ``folder`` is a Hugging Face GPT-2 folder (config.json of model_type gpt2)."""
    import json
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupted?): {e}") from None
    return isinstance(config, dict) and config.get("model_type") == "gpt2"


def load_model(checkpoint):
    """A GPT and its tokenizer from a checkpoint folder written by ``train`` or from a
    Hugging Face GPT-2 folder (config.json with model_type "gpt2" + model.safetensors)."""
    from . import checkpoint as ck
    from .models import GPT, GPTConfig
    if _is_gpt2_folder(checkpoint):
        model = GPT.from_pretrained(checkpoint)
        return model, model.tokenizer
    info = ck.read_checkpoint(checkpoint)
    model = GPT(GPTConfig(**info["config"]["model_config"]))
    ck.check_state_dict(model.state_dict(), info["weights"], info["folder"])
    model.load_state_dict(info["weights"])
    return model, ck.load_tokenizer(checkpoint)


def _trained_special_ids(checkpoint, tokenizer):
    """Special token ids the checkpoint's model saw as text: those ``train`` recorded (none
    for checkpoints written otherwise); a GPT-2 folder's model knows its eos."""
    import json
    from . import checkpoint as ck
    if _is_gpt2_folder(checkpoint):
        return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    path = os.path.join(ck.resolve_checkpoint(checkpoint), ck.STATE_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    return state.get("extra", {}).get("train_config", {}).get("extra", {}).get(
        "special_ids_in_text", [])


def _load_for_generation(args):
    """(model, tokenizer, special ids seen in training) of --checkpoint, or a UsageError."""
    try:
        model, tokenizer = load_model(args.checkpoint)
        if tokenizer is None:
            raise ValueError(f"{args.checkpoint}: the folder holds no tokenizer")
        return model, tokenizer, _trained_special_ids(args.checkpoint, tokenizer)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"--checkpoint {args.checkpoint}: cannot load it: {e}") from None


def cmd_generate(args):
    model, tokenizer, trained_special_ids = _load_for_generation(args)
    if args.device != "cpu":
        model.to(args.device)
    return _generate(model, tokenizer, args.prompt, args.max_new_tokens, args.temperature,
                     args.top_k, args.top_p, args.seed, not args.no_cache, args.device,
                     trained_special_ids=trained_special_ids)
