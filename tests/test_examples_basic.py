"""The examples of the documents' models learn: each runs a small configuration through its
importable ``main(argv)`` and is judged on held-out data (not on a falling training loss).

Also small checks of the models the examples use (generation with a carried state).
"""

import numpy as np
import pytest

from tinygrad_llm.creation import Generator
from tinygrad_llm.models.lstm import LSTMConfig, LSTMLanguageModel
from tinygrad_llm.models.seed004 import Seed004LM

from example_helpers import load_example


def test_linear_regression_matches_closed_form():
    r = load_example("linear_regression").main(["--quick", "--quiet"])
    fits = r["fits"]
    best = fits["closed form (lstsq)"]
    # the closed form really fits: far better than predicting the training mean
    assert best["test_mse"] < 0.3 * r["baseline_test_mse"]
    for name in ("GD by hand", "GD (optim.GD)"):
        assert fits[name]["w_rel_err"] < 1e-4 and fits[name]["b_err"] < 1e-4, (name, fits)
    for name in ("SGD by hand", "SGD (optim.SGD)"):       # mini-batch noise leaves a little
        assert fits[name]["w_rel_err"] < 0.02 and fits[name]["b_err"] < 0.05, (name, fits)
    for name, fit in fits.items():
        assert abs(fit["test_mse"] - best["test_mse"]) < 0.01 * best["test_mse"], name


def test_text_classifier_learns():
    r = load_example("text_classifier").main(
        ["--quick", "--quiet", "--samples", "1000", "--epochs", "3"])
    assert r["test_accuracy"] > 0.9 and r["unseen_accuracy"] > 0.9, r
    assert r["precision"] > 0.85 and r["recall"] > 0.85, r
    assert r["test_accuracy"] == pytest.approx(r["accuracy"])
    assert r["test_loss"] < 0.5 * np.log(2)              # well below guessing's log 2


def test_word2vec_neighbours_and_analogies():
    r = load_example("word2vec").main(["--quick", "--quiet", "--collapse"])
    sgns, cos, bad = r["sgns"], r["cosine"], r["positives_only"]
    # SGNS: king - man + woman = queen and the like, over the whole vocabulary
    assert sgns["all"]["analogy_acc"] > 0.5 > 20 * sgns["all"]["analogy_chance"]
    assert sgns["all"]["neighbor_acc"] > 0.8 > 3 * sgns["all"]["neighbor_chance"]
    assert r["king-man+woman"] == "queen"
    # seed 000's one-table cosine model with negatives: right among the answer-key words
    assert cos["key"]["analogy_acc"] > 0.5 > 5 * cos["key"]["analogy_chance"]
    assert cos["key"]["neighbor_acc"] > 0.8 > 2 * cos["key"]["neighbor_chance"]
    assert cos["cos(king,queen)"] > cos["cos(king,bread)"] + 0.3
    # y = +1 only collapses: every pair of words has cosine ~1
    assert bad["mean_cosine"] > 0.9 and cos["mean_cosine"] < 0.5


def test_lstm_language_model_beats_unigram():
    r = load_example("lstm_language_model").main(
        ["--quick", "--quiet", "--steps", "150", "--max-new-tokens", "40"])
    assert r["val_ppl"] < 0.65 * r["unigram_ppl"], r
    assert len(r["sample"]) > 40


def test_seed004_models_learn():
    r = load_example("seed004_autoregressive").main(["--quick", "--quiet"])
    pre, fine = r["pretrain"], r["finetune"]
    assert pre["formula1_nll"] < pre["unigram_nll"] - 0.5, pre
    assert pre["code_nll"] < pre["unigram_nll"] - 0.5, pre
    assert fine["formula2_nll"] < fine["unigram_nll"] - 0.3, fine
    assert fine["code_nll"] < fine["unigram_nll"] - 0.3, fine
    assert fine["formula2_accuracy"] > 0.85 and fine["code_accuracy"] > 0.85, fine


def test_reinforcement_learning_improves():
    r = load_example("reinforcement_learning").main(
        ["--quick", "--quiet", "--rl-steps", "30", "--pretrain-steps", "100"])
    q = r["q_learning"]
    assert q["reached_goal"] and q["greedy_steps"] == q["optimal_steps"], q
    assert q["greedy_return"] == -q["optimal_steps"]
    assert q["last_returns"] > q["first_returns"]
    pg = r["reinforce"]
    assert pg["share_after"] > pg["share_before"] + 0.1, pg


def test_lstm_generate_with_state_matches_rereading_the_prefix():
    model = LSTMLanguageModel(LSTMConfig(vocab_size=11, n_embd=4, hidden_size=8),
                              generator=Generator(3))
    prompt = np.array([[1, 5, 2], [4, 4, 9]])
    out = model.generate(prompt, 6, do_sample=False)
    ids = prompt
    for _ in range(6):                          # greedy, re-reading the whole prefix
        logits, _ = model(ids)
        ids = np.concatenate([ids, logits.detach().numpy()[:, -1].argmax(-1)[:, None]], 1)
    assert np.array_equal(out, ids)


def test_seed004_generate_with_running_sum_matches_forward():
    rng = np.random.default_rng(0)
    model = Seed004LM(7)
    model.W_e.data[...] = rng.normal(size=7)
    model.W_h.data[...] = rng.normal(size=(7, 7))
    out = model.generate(np.array([[3, 1]]), 5, do_sample=False)
    ids = np.array([[3, 1]])
    for _ in range(5):
        logits, _ = model(ids)
        ids = np.concatenate([ids, logits.detach().numpy()[:, -1].argmax(-1)[:, None]], 1)
    assert np.array_equal(out, ids)
