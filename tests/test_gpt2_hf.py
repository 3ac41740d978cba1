"""GPT-2 folders in the Hugging Face format: transformers writes, we read (and the reverse),
with identical logits, greedy tokens and tokenization. transformers and torch are oracles."""
import os

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm.data import ByteLevelBPETokenizer, default_corpus
from tinygrad_llm.models import GPT, GPTConfig

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.oracle

PROMPTS = ["Return the number of items.", "  spaces\tand\nnewlines 12345 ",
           "def f(x):\n    return x ** 2", "unicode: naïve café 中文 🙂"]


@pytest.fixture(scope="module")
def tokenizer():
    return ByteLevelBPETokenizer.train([default_corpus(max_chars=200_000)], vocab_size=400)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory, tokenizer):
    folder = str(tmp_path_factory.mktemp("hf_gpt2"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=64,
                                     n_embd=32, n_layer=2, n_head=4)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    from tinygrad_llm.data import write_merges
    import json
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer.get_vocab(), f, ensure_ascii=False)
    write_merges(os.path.join(folder, "merges.txt"), tokenizer.merges)
    return folder, model


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def test_logits_agree_after_loading_a_transformers_folder(hf_folder, tokenizer):
    folder, hf_model = hf_folder
    ours = GPT.from_pretrained(folder)
    for text in PROMPTS:
        ids = [tokenizer.encode(text)]
        np.testing.assert_allclose(ours(np.array(ids))[0].data, hf_logits(hf_model, ids),
                                   atol=1e-4, rtol=1e-4)


def test_greedy_generation_is_identical(hf_folder, tokenizer):
    folder, hf_model = hf_folder
    ours = GPT.from_pretrained(folder)
    ids = np.array([tokenizer.encode(PROMPTS[0])])
    mine = ours.generate(ids, 50, do_sample=False)
    with torch.no_grad():
        theirs = hf_model.generate(torch.tensor(ids), max_new_tokens=50, do_sample=False,
                                   pad_token_id=0).numpy()
    np.testing.assert_array_equal(mine, theirs)


def test_tokenization_matches_gpt2_tokenizer_fast(hf_folder, tmp_path):
    folder, _ = hf_folder
    model = GPT.from_pretrained(folder)
    ours = model.tokenizer
    model.save_pretrained(str(tmp_path))  # writes tokenizer_config.json too
    theirs = transformers.GPT2TokenizerFast.from_pretrained(str(tmp_path))
    for text in PROMPTS + ["", "a  b   c", "x" * 300]:
        assert ours.encode(text) == theirs.encode(text)


def test_our_folder_loads_in_transformers(tmp_path, tokenizer):
    model = GPT(GPTConfig(block_size=64, vocab_size=tokenizer.vocab_size, n_layer=2, n_head=2,
                          n_embd=16), generator=tg.Generator(3))
    model.save_pretrained(str(tmp_path), tokenizer=tokenizer)
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path)).eval()
    ids = [tokenizer.encode(PROMPTS[2])]
    np.testing.assert_allclose(model(np.array(ids))[0].data, hf_logits(hf_model, ids),
                               atol=1e-4, rtol=1e-4)
    fast = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert fast.encode(PROMPTS[3]) == tokenizer.encode(PROMPTS[3])


def test_pickle_weights_are_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ValueError, match="pickle"):
        GPT.from_pretrained(str(tmp_path))


def test_pipeline_and_cli_take_a_folder(hf_folder):
    from tinygrad_llm.hf import pipeline
    folder, _ = hf_folder
    out = pipeline("text-generation", model=folder)("Return the", max_new_tokens=5,
                                                   do_sample=False)
    assert out[0]["generated_text"].startswith("Return the")
