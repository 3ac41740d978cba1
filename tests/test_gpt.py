"""The GPT model: shapes, initial loss, GPT-2 names, KV-cache generation, learning."""
import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm.models import GPT, GPTConfig
from tinygrad_llm.testing import gradcheck

TINY = dict(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=8)


def tiny(**kw):
    return GPT(GPTConfig(**{**TINY, **kw}), generator=tg.Generator(0))


def test_forward_shapes_and_initial_loss_near_log_vocab():
    model = tiny()
    idx = np.random.default_rng(0).integers(0, 11, (3, 7))
    targets = np.random.default_rng(1).integers(0, 11, (3, 7))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 7, 11)
    assert abs(loss.item() - np.log(11)) < 0.1
    assert model(idx)[1] is None


def test_parameter_names_follow_gpt2():
    names = [n for n, _ in tiny().named_parameters()]
    for expected in ["transformer.wte.weight", "transformer.wpe.weight",
                     "transformer.h.0.ln_1.weight", "transformer.h.0.attn.c_attn.weight",
                     "transformer.h.1.mlp.c_proj.bias", "transformer.ln_f.bias"]:
        assert expected in names
    assert not any("lm_head" in n for n in names)  # tied to wte


def test_too_long_input_is_rejected():
    with pytest.raises(ValueError, match="block_size 16"):
        tiny()(np.zeros((1, 17), dtype=np.int64))


@pytest.mark.parametrize("do_sample", [False, True])
def test_kv_cache_gives_the_same_tokens(do_sample):
    model = tiny()
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    kw = dict(do_sample=do_sample, temperature=1.5, top_k=5)
    with_cache = model.generate(prompt, 20, generator=tg.Generator(3), use_cache=True, **kw)
    without = model.generate(prompt, 20, generator=tg.Generator(3), use_cache=False, **kw)
    np.testing.assert_array_equal(with_cache, without)
    assert with_cache.shape == (2, 23)  # 3 + 20 > block_size 16: the window slides


@pytest.mark.parametrize("kw", [dict(), dict(activation="gelu"), dict(bias=False)],
                         ids=["gelu_new", "exact gelu", "no biases"])
def test_fused_decoding_gives_the_tokens_of_the_tensor_ops(kw):
    model = tiny(**kw)
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    args = dict(do_sample=True, temperature=1.5, top_k=5)
    fused = model.generate(prompt, 20, generator=tg.Generator(3), **args)
    tensor_ops = model.generate(prompt, 20, generator=tg.Generator(3), fused=False, **args)
    without = model.generate(prompt, 20, generator=tg.Generator(3), use_cache=False, **args)
    np.testing.assert_array_equal(fused, tensor_ops)
    np.testing.assert_array_equal(fused, without)   # 3 + 20 > 16: the window slides too


def test_fused_decoding_logits_match_the_full_forward():
    model = tiny().double()
    model.eval()
    ids = np.random.default_rng(2).integers(0, 11, (3, 12))
    full, _ = model(ids)
    caches = [dict() for _ in range(2)]
    first, _ = model(ids[:, :5], caches=caches)              # the prompt: Tensor forward
    state = model._decoder(caches)                           # kernels/gpt_decode.GPTDecoder
    got = [state.step(ids[:, i:i + 1]) for i in range(5, 12)]  # then one fused step a token
    np.testing.assert_allclose(np.stack(got, axis=1), full.data[:, 5:], rtol=1e-10,
                               atol=1e-12)
    assert state.t == 12


def test_fused_decoding_rejects_bad_ids_and_falls_back_for_many_rows():
    model = tiny()
    caches = [dict() for _ in range(2)]
    model(np.array([[1, 2]]), caches=caches)
    with pytest.raises(IndexError, match="out of range"):
        model._decoder(caches).step(np.array([[-1]]))
    with pytest.raises(ValueError, match="one integer token per sequence"):
        model._decoder(caches).step(np.array([[1, 2]]))
    prompt = np.arange(9 * 2).reshape(9, 2) % 11            # 9 rows > FEW_ROWS: Tensor ops
    np.testing.assert_array_equal(model.generate(prompt, 5, do_sample=False),
                                  model.generate(prompt, 5, do_sample=False, use_cache=False))


def test_cached_logits_match_full_forward():
    model = tiny().double()
    ids = np.random.default_rng(1).integers(0, 11, (2, 9))
    full, _ = model(ids)
    caches = [dict() for _ in range(2)]
    step1, _ = model(ids[:, :4], caches=caches)
    step2, _ = model(ids[:, 4:6], caches=caches)   # several new tokens at once
    step3, _ = model(ids[:, 6:], caches=caches)
    got = np.concatenate([step1.data, step2.data, step3.data], axis=1)
    np.testing.assert_allclose(got, full.data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("keep", [1, 3, 7, 20])
def test_logits_to_keep_gives_the_last_positions_of_the_full_forward(keep):
    model = tiny()
    idx = np.random.default_rng(3).integers(0, 11, (2, 7))
    full = model(idx)[0].data
    kept = model(idx, logits_to_keep=keep)[0]
    assert kept.shape == (2, min(keep, 7), 11)
    np.testing.assert_allclose(kept.data, full[:, -keep:], rtol=1e-5, atol=1e-6)
    caches = [dict() for _ in model.transformer.h]          # with the KV cache too
    model(idx[:, :4], caches=caches)
    step = model(idx[:, 4:], caches=caches, logits_to_keep=1)[0].data
    np.testing.assert_allclose(step[:, 0], full[:, -1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_logits_to_keep_rejects_bad_values_and_targets(bad):
    model = tiny()
    idx = np.zeros((1, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(idx, logits_to_keep=bad)
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(idx, targets=idx, logits_to_keep=1)


def test_gradients_of_a_tiny_gpt_in_float64():
    model = tiny(n_layer=1).double()
    ids = np.array([[1, 2, 3, 4]])
    params = [p for _, p in model.named_parameters()]

    def loss_of(*ps):
        return model(ids, ids)[1]

    assert gradcheck(loss_of, params, mode="directional", n_directions=2)


def test_overfits_one_batch():
    model = tiny()
    from tinygrad_llm.optim import AdamW
    opt = AdamW(model.named_parameters(), lr=1e-2)
    ids = np.random.default_rng(0).integers(0, 11, (4, 12))
    for _ in range(60):
        _, loss = model(ids[:, :-1], ids[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5


def test_bias_false_removes_every_bias_linear_and_layer_norm():
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8,
                          bias=False))
    names = [n for n, _ in model.named_parameters()]
    assert not [n for n in names if n.endswith("bias")], names
    logits, _ = model(np.array([[1, 2, 3]]))
    assert logits.shape == (1, 3, 11)
    tokens = model.generate(np.array([[1, 2]]), 4, do_sample=False)
    np.testing.assert_array_equal(tokens, model.generate(np.array([[1, 2]]), 4, do_sample=False,
                                                         fused=False))
