"""randint (torch's signatures), randperm, multinomial and from_numpy."""
import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import creation


def test_randint_signatures():
    a = creation.randint(10, (3, 4), generator=tg.Generator(0))
    b = creation.randint(0, 10, (3, 4), generator=tg.Generator(0))
    c = creation.randint(5, 7, size=(1000,))
    assert a.shape == (3, 4) and a.dtype == np.int64
    np.testing.assert_array_equal(a.data, b.data)               # low defaults to 0
    assert set(np.unique(c.data)) == {5, 6}
    assert creation.randint(3, (2,), dtype="int32").dtype == np.int32
    with pytest.raises(TypeError, match="size"):
        creation.randint(3)
    with pytest.raises(RuntimeError, match="from"):
        creation.randint(5, 5, (2,))


def test_randperm_is_a_seeded_permutation():
    p = creation.randperm(20, generator=tg.Generator(1))
    assert p.dtype == np.int64
    np.testing.assert_array_equal(np.sort(p.data), np.arange(20))
    np.testing.assert_array_equal(p.data, creation.randperm(20, generator=tg.Generator(1)).data)
    assert creation.randperm(0).shape == (0,)


def test_multinomial_with_replacement_frequencies():
    w = tg.tensor([[1.0, 0.0, 3.0], [0.0, 5.0, 5.0]])        # rows need not sum to 1
    s = creation.multinomial(w, 20000, replacement=True, generator=tg.Generator(2))
    assert s.shape == (2, 20000) and s.dtype == np.int64
    freq0 = np.bincount(s.data[0], minlength=3) / 20000
    freq1 = np.bincount(s.data[1], minlength=3) / 20000
    np.testing.assert_allclose(freq0, [0.25, 0.0, 0.75], atol=0.015)
    np.testing.assert_allclose(freq1, [0.0, 0.5, 0.5], atol=0.015)
    assert freq0[1] == 0 and freq1[0] == 0                     # zero weights never drawn


def test_multinomial_without_replacement():
    w = tg.tensor([0.0, 1.0, 2.0, 7.0])
    gen = tg.Generator(3)
    draws = np.stack([creation.multinomial(w, 3, generator=gen).data for _ in range(4000)])
    assert draws.shape == (4000, 3)
    assert all(len(set(row)) == 3 and 0 not in row for row in draws)   # distinct, no zeros
    # the first draw is proportional to the weights
    np.testing.assert_allclose(np.bincount(draws[:, 0], minlength=4) / 4000,
                               [0.0, 0.1, 0.2, 0.7], atol=0.025)
    # the second, given the first was 3, is proportional to the remaining weights (1 : 2)
    second = draws[draws[:, 0] == 3, 1]
    np.testing.assert_allclose(np.mean(second == 2), 2 / 3, atol=0.03)


@pytest.mark.parametrize("weights, n, replacement, match", [
    ([0.0, 1.0, 0.0], 2, False, "not enough"),
    ([1.0, 2.0], 3, False, "n_sample > prob_dist"),
    ([1.0, float("nan")], 1, True, "inf"),
    ([1.0, -1.0], 1, True, "element < 0"),
    ([0.0, 0.0], 1, True, "sum of probabilities"),
])
def test_multinomial_errors(weights, n, replacement, match):
    with pytest.raises(RuntimeError, match=match):
        creation.multinomial(tg.tensor(weights), n, replacement=replacement)


def test_multinomial_errors_match_torch():
    # (Too few non-zero categories without replacement: recent torch CPU returns a zero-weight
    # category there instead of raising; this library raises, as torch documents.)
    torch = pytest.importorskip("torch")
    for weights, n, replacement in [([1.0, 2.0], 3, False), ([1.0, -1.0], 1, True),
                                    ([0.0, 0.0], 1, True), ([1.0, float("inf")], 1, True)]:
        with pytest.raises(RuntimeError):
            torch.multinomial(torch.tensor(weights), n, replacement=replacement)
        with pytest.raises(RuntimeError):
            creation.multinomial(tg.tensor(weights), n, replacement=replacement)


def test_from_numpy_shares_memory():
    a = np.arange(4, dtype=np.float32)
    t = creation.from_numpy(a)
    a[0] = 9.0
    assert t.data[0] == 9.0 and t.dtype == np.float32
    with pytest.raises(TypeError):
        creation.from_numpy([1, 2])


def _sample_top_k(torch, logits, top_k, generator):
    """nanoGPT's sampling step, written as for PyTorch."""
    F = torch.nn.functional
    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
    logits[logits < v[:, [-1]]] = -float("Inf")
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def test_nanogpt_top_k_sampling_runs_unchanged():
    import tinygrad_llm as torch_alias
    logits = np.random.default_rng(4).standard_normal((3, 10)).astype(np.float32)
    gen = torch_alias.Generator().manual_seed(0)
    draws = np.concatenate([_sample_top_k(torch_alias, torch_alias.tensor(logits), 3, gen).data
                            for _ in range(200)], axis=1)               # (3, 200)
    allowed = np.argsort(-logits, axis=1)[:, :3]
    assert draws.dtype == np.int64
    assert all(set(row) <= set(top) for row, top in zip(draws, allowed))
    assert all(len(set(row)) == 3 for row in draws)                     # all three drawn
