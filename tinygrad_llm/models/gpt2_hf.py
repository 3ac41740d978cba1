"""GPT-2 checkpoints in the Hugging Face folder format, read and written without torch.

A folder holds ``config.json`` (n_embd, n_layer, n_head, n_positions, vocab_size,
layer_norm_epsilon, activation_function), ``model.safetensors`` and the tokenizer files
``vocab.json`` + ``merges.txt``. The mapping to our GPT is one to one by name, except that
GPT-2 implements its projections with a "Conv1D" module that stores the weight as (in, out):
our Linear stores (out, in), so those four matrices per block are transposed.

    GPT-2 key (with or without the "transformer." prefix)      our parameter
    wte.weight (V, C), wpe.weight (P, C)                        transformer.wte / wpe
    h.{i}.ln_1 / ln_2 / ln_f .weight .bias                      same names
    h.{i}.attn.c_attn.weight (C, 3C)   Conv1D                   transposed -> (3C, C)
    h.{i}.attn.c_proj.weight (C, C)    Conv1D                   transposed
    h.{i}.mlp.c_fc.weight (C, 4C), mlp.c_proj.weight (4C, C)    transposed
    lm_head.weight                                              tied to wte (not stored)
    h.{i}.attn.bias, attn.masked_bias                           causal-mask buffers: ignored

Pickle-based weights (pytorch_model.bin) are refused: unpickling can run arbitrary code.

    read_gpt2_folder(folder, dtype) -> (GPTConfig fields, weights in our names, tokenizer)
    save_gpt2_folder(model, folder, tokenizer=None)

``GPT.from_pretrained(folder)`` and ``model.save_pretrained(folder)`` (models/gpt.py) call these.
"""
import json
import os

import numpy as np

from ..backend import to_numpy
from ..checkpoint import load_arrays, save_arrays

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")  # buffers, not weights


def _config_from_hf(cfg):
    """GPTConfig's fields from a Hugging Face GPT-2 config.json."""
    act = cfg.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh", "gelu"):
        raise ValueError(f"unsupported activation_function {act!r} (GPT-2 uses 'gelu_new')")
    return dict(block_size=cfg["n_positions"], vocab_size=cfg["vocab_size"],
                n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                dropout=0.0, bias=True, layer_norm_epsilon=cfg.get("layer_norm_epsilon", 1e-5),
                activation="gelu" if act == "gelu" else "gelu_new")


def _hf_to_ours(weights):
    """GPT-2 state dict (arrays) -> our names and layouts."""
    out = {}
    for key, value in weights.items():
        name = key[len("transformer."):] if key.startswith("transformer.") else key
        if name == "lm_head.weight" or name.endswith(IGNORED_SUFFIXES):
            continue
        if name.endswith(CONV1D):
            value = value.T
        out["transformer." + name] = np.ascontiguousarray(value)
    return out


def read_gpt2_folder(folder, dtype=np.float32):
    """(GPTConfig fields, {our parameter name: array}, ByteLevelBPETokenizer or None) from a
    Hugging Face GPT-2 folder."""
    from ..data import ByteLevelBPETokenizer
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no model folder at {folder}")
    st_path = os.path.join(folder, "model.safetensors")
    if not os.path.exists(st_path):
        pickles = [n for n in ("pytorch_model.bin", "model.bin", "tf_model.h5")
                   if os.path.exists(os.path.join(folder, n))]
        if pickles:
            raise ValueError(f"{folder} has only {pickles[0]}: pickle-based weights are refused "
                             f"because loading them can run arbitrary code. Convert them once "
                             f"with transformers (model.save_pretrained(folder, "
                             f"safe_serialization=True)) to get model.safetensors.")
        raise FileNotFoundError(f"{folder} has no model.safetensors")
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        hf_config = json.load(f)
    if hf_config.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"{folder} holds a {hf_config.get('model_type')!r} model, not gpt2")
    config = _config_from_hf(hf_config)
    weights = {k: v.astype(dtype) for k, v in _hf_to_ours(load_arrays(st_path)).items()}
    tokenizer = None
    if os.path.exists(os.path.join(folder, "vocab.json")):
        tokenizer = ByteLevelBPETokenizer.from_files(os.path.join(folder, "vocab.json"),
                                                     os.path.join(folder, "merges.txt"))
    return config, weights, tokenizer


def save_gpt2_folder(model, folder, tokenizer=None):
    """Write ``model`` (and ``tokenizer``) as a Hugging Face GPT-2 folder."""
    from ..data import write_merges
    cfg = model.config
    os.makedirs(folder, exist_ok=True)
    weights = {}
    for name, value in model.state_dict().items():
        if name.endswith(CONV1D):
            value = value.T
        weights[name] = np.ascontiguousarray(to_numpy(value), dtype=np.float32)  # (from a GPU)
    save_arrays(os.path.join(folder, "model.safetensors"), weights, metadata={"format": "pt"})
    hf_config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": cfg.vocab_size, "n_positions": cfg.block_size, "n_ctx": cfg.block_size,
        "n_embd": cfg.n_embd, "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_inner": None,
        "activation_function": "gelu" if cfg.activation == "gelu" else "gelu_new",
        "layer_norm_epsilon": cfg.layer_norm_epsilon, "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout, "attn_pdrop": cfg.dropout, "initializer_range": 0.02,
        "scale_attn_weights": True, "use_cache": True, "tie_word_embeddings": True,
        "bos_token_id": cfg.vocab_size - 1, "eos_token_id": cfg.vocab_size - 1,
    }
    if tokenizer is not None:
        vocab = tokenizer.get_vocab()
        with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        write_merges(os.path.join(folder, "merges.txt"), tokenizer.merges)
        eot = "<|endoftext|>"
        if eot in vocab:
            hf_config["bos_token_id"] = hf_config["eos_token_id"] = vocab[eot]
        with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"tokenizer_class": "GPT2Tokenizer", "model_max_length": cfg.block_size,
                       "bos_token": eot, "eos_token": eot, "unk_token": eot,
                       "add_prefix_space": False}, f, indent=2)
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(hf_config, f, indent=2)
    return folder
