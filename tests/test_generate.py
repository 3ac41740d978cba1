"""Decoding: greedy, temperature, top-k, top-p, seeded sampling, the loop, beam search."""
import numpy as np
import pytest

from tinygrad_llm.generate import (beam_search, decode_loop, filter_logits,
                                   sample_next_token)

LOGITS = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))


def test_greedy_and_its_equivalents():
    assert sample_next_token(LOGITS, do_sample=False)[0] == 0
    assert sample_next_token(LOGITS, temperature=0)[0] == 0
    assert sample_next_token(LOGITS, top_k=1, generator=1)[0] == 0
    assert sample_next_token(LOGITS, top_p=0.1, generator=1)[0] == 0


def test_top_k_and_top_p_keep_the_right_sets():
    kept_k = np.isfinite(filter_logits(LOGITS, top_k=2))[0]
    np.testing.assert_array_equal(kept_k, [True, True, False, False])
    kept_p = np.isfinite(filter_logits(LOGITS, top_p=0.75))[0]  # 0.5 + 0.3 reaches 0.75
    np.testing.assert_array_equal(kept_p, [True, True, False, False])
    kept_p = np.isfinite(filter_logits(LOGITS, top_p=0.85))[0]
    np.testing.assert_array_equal(kept_p, [True, True, True, False])


def test_sampling_frequencies_follow_the_distribution():
    rng = np.random.default_rng(0)
    draws = np.array([sample_next_token(LOGITS, generator=rng)[0] for _ in range(20000)])
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    hot = np.array([sample_next_token(LOGITS, temperature=0.25, generator=rng)[0]
                    for _ in range(2000)])
    assert (hot == 0).mean() > 0.8  # low temperature sharpens towards the argmax


def test_same_seed_same_tokens():
    a = [sample_next_token(LOGITS, generator=np.random.default_rng(5))[0] for _ in range(3)]
    b = [sample_next_token(LOGITS, generator=np.random.default_rng(5))[0] for _ in range(3)]
    assert a == b


def counting_step(V=5):
    """A toy model: the next token is (last token + 1) mod V, with high confidence."""
    def step(new_ids, cache):
        last = new_ids[:, -1]
        logits = np.full((len(last), V), -5.0)
        logits[np.arange(len(last)), (last + 1) % V] = 5.0
        return logits, (cache or 0) + 1
    return step


def test_decode_loop_extends_and_streams_and_stops_at_eos():
    seen = []
    out = decode_loop(counting_step(), [[0], [2]], 3, do_sample=False, stream=seen.append)
    np.testing.assert_array_equal(out, [[0, 1, 2, 3], [2, 3, 4, 0]])
    assert len(seen) == 3
    out = decode_loop(counting_step(), [[0]], 10, do_sample=False, eos_token_id=2)
    np.testing.assert_array_equal(out, [[0, 1, 2]])
    with pytest.raises(ValueError, match="prompt"):
        decode_loop(counting_step(), np.zeros((1, 0)), 3)


def test_beam_search_beats_greedy_on_a_garden_path():
    # From token 0: greedy takes 1 (p=0.6), after which eos has only p=0.4 (0.24 in total);
    # token 2 (p=0.4) is followed by eos with p=1 (0.4 in total). Token 3 is eos.
    table = {0: [0, 0.6, 0.4, 0], 1: [0.3, 0.3, 0, 0.4], 2: [0, 0, 0, 1.0]}

    def step(prefixes):
        rows = []
        for p in prefixes:
            probs = np.array(table.get(int(p[-1]), [0, 0, 0, 1.0])) + 1e-12
            rows.append(np.log(probs / probs.sum()))
        return np.array(rows)

    greedy = beam_search(step, [0], 5, beam_size=1, eos_token_id=3)
    best = beam_search(step, [0], 5, beam_size=2, eos_token_id=3, length_penalty=0.0)
    assert greedy[:2] == [0, 1]
    assert best == [0, 2, 3]


def test_beam_search_does_not_return_an_unfinished_prefix():
    # Two junk hypotheses end early with low scores; the good one needs 3 more tokens.
    def step(prefixes):
        lp = np.full((len(prefixes), 4), -10.0)
        for k, seq in enumerate(prefixes):
            if len(seq) - 1 < 3:
                lp[k, 2], lp[k, 1] = -0.1, -3.0
            else:
                lp[k, 1] = -0.1
        return lp

    assert beam_search(step, [0], 10, beam_size=2, eos_token_id=1) == [0, 2, 2, 2, 1]


def test_suppressed_tokens_are_never_chosen():
    # token 0 is the argmax and the most likely sample: masked, it never appears
    assert sample_next_token(LOGITS, do_sample=False, suppress_tokens=[0])[0] == 1
    rng = np.random.default_rng(0)
    draws = [sample_next_token(LOGITS, generator=rng, top_k=2, suppress_tokens=[0, 3])[0]
             for _ in range(500)]
    assert set(draws) <= {1, 2} and 1 in draws
    rng = np.random.default_rng(0)
    draws = [sample_next_token(LOGITS, generator=rng, top_p=0.5, suppress_tokens=[0])[0]
             for _ in range(50)]
    assert set(draws) == {1}                  # top-p is taken over the remaining tokens
    with pytest.raises(ValueError, match="id 4, outside the vocabulary of size 4"):
        sample_next_token(LOGITS, suppress_tokens=[4])
    with pytest.raises(ValueError, match="masks all 4 tokens"):
        sample_next_token(LOGITS, suppress_tokens=[0, 1, 2, 3])


def test_decode_loop_skips_suppressed_tokens_and_keeps_eos():
    # counting_step always wants last + 1; with 2 masked, the loop takes the runner-up
    out = decode_loop(counting_step(), [[0]], 4, do_sample=False, suppress_tokens=[2])
    assert 2 not in out[0, 1:]
    out = decode_loop(counting_step(), [[1]], 10, do_sample=False, eos_token_id=3,
                      suppress_tokens=[0, 4])
    np.testing.assert_array_equal(out, [[1, 2, 3]])    # eos still ends the loop
