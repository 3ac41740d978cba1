"""The model examples learn (held-out criteria, small --quick configurations), and the models
they use (BERT, GPT classifier, seq2seq Transformer) keep their contracts: padding and future
tokens change nothing, pre-trained weights load, beam search of width 1 is greedy decoding."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_llm.autograd import no_grad
from tinygrad_llm.checkpoint import save_checkpoint
from tinygrad_llm.creation import Generator
from tinygrad_llm.models import GPT, GPTConfig
from tinygrad_llm.models.bert import (BertConfig, BertForPreTraining,
                                      BertForSequenceClassification)
from tinygrad_llm.models.gpt_classifier import GPTForSequenceClassification
from tinygrad_llm.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(name, args, tmp_path):
    """``examples/<name>.py``'s main(args) in a fresh interpreter; returns its result dict.

    One BLAS and one numba thread: these models multiply small matrices, where a second
    OpenBLAS thread only adds waiting, and on a busy 2-core machine it made these runs 5-7x
    slower (measured: 307 s instead of 44 s for this file). The thread count is fixed when
    numpy loads, hence the separate process."""
    result = tmp_path / "result.json"
    code = (f"import json, sys; sys.path.insert(0, {EXAMPLES!r}); import {name} as ex; "
            f"res = ex.main({list(args) + ['--out', str(tmp_path / 'run')]!r}); "
            f"json.dump(res, open({str(result)!r}, 'w'), default=float)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(result.read_text())


# ----- the examples learn ---------------------------------------------------------------------

def test_gpt_pretraining_beats_the_unigram_model(tmp_path):
    res = run_example("gpt_pretraining", ["--quick"], tmp_path)
    # held-out text: far below the context-free unigram model (and the uniform one)
    assert res["val_perplexity"] < 0.6 * res["unigram_perplexity"], res
    assert res["unigram_perplexity"] < res["uniform_perplexity"]
    assert res["val_perplexity"] < 0.25 * res["val_perplexity_init"]
    # pipeline('text-generation', model=<checkpoint folder>) continues the prompt
    assert res["generated_text"].startswith("Return the")
    assert len(res["generated_text"]) > len("Return the") + 20


def test_bert_pretraining_then_fine_tuning(tmp_path):
    res = run_example("bert_pretraining", ["--quick", "--no-baseline"], tmp_path)
    # masked LM on held-out text: better than at initialization and than the unigram guess
    assert res["mlm_loss_after"] < res["mlm_loss_before"] - 1.0, res
    assert res["mlm_loss_after"] < res["mlm_loss_unigram"] - 0.3, res
    # fine-tuned [CLS] classifier on 400 held-out test sentences (chance: 0.5)
    assert res["test_accuracy"] > 0.72, res
    assert res["test_f1"] > 0.6, res
    assert res["reloaded_test_accuracy"] == res["test_accuracy"]   # the saved model
    assert os.path.exists(os.path.join(res["checkpoint"], "model.safetensors"))


def test_gpt_sequence_classification_with_the_trainer(tmp_path):
    res = run_example("gpt_sequence_classification", ["--quick", "--no-baseline"], tmp_path)
    assert res["pretrain_val_perplexity"] < 0.6 * res["pretrain_unigram_perplexity"], res
    assert res["test_accuracy"] > 0.75, res                 # 400 test sentences, chance 0.5
    assert res["val_accuracy"] > 0.75, res
    assert os.path.exists(os.path.join(res["model_dir"], "model.safetensors"))


def test_translation_of_dates(tmp_path):
    res = run_example("translation", ["--quick"], tmp_path)
    # 100 new test dates, greedy; 20 with beam search
    assert res["greedy_bleu"] > 70, res
    assert res["greedy_exact_match"] > 0.6, res
    assert res["beam_exact_match"] > 0.5, res


# ----- model contracts ------------------------------------------------------------------------

def small_bert(cls, **kw):
    cfg = BertConfig(vocab_size=50, max_position_embeddings=16, hidden_size=16,
                     num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **kw)
    return cls(cfg, generator=Generator(0))


@no_grad()
def test_bert_ignores_padding_and_loads_its_pretrained_trunk(tmp_path):
    pre = small_bert(BertForPreTraining)
    ids = np.array([[2, 10, 11, 12, 3], [2, 20, 21, 3, 0]])
    mask = (np.arange(5) < np.array([[5], [4]])).astype(np.int64)
    out = pre(ids, mask)
    alone = pre(ids[1:, :4])                                      # the second row, unpadded
    np.testing.assert_allclose(out["logits"].numpy()[1, :4], alone["logits"].numpy()[0],
                               atol=1e-5)
    labels = np.full((2, 5), -100)
    labels[0, 2] = 11
    loss = pre(ids, mask, labels=labels)["mlm_loss"].item()      # only position (0, 2) counts
    logp = out["logits"].numpy()[0, 2] - np.log(np.exp(out["logits"].numpy()[0, 2]).sum())
    assert abs(loss + logp[11]) < 1e-4
    folder = save_checkpoint(str(tmp_path / "pre"), pre, model_config=pre.config_dict())
    clf = BertForSequenceClassification.from_pretrained(folder, num_labels=3)
    for name, p in clf.bert.named_parameters():
        np.testing.assert_array_equal(p.data, pre.bert.state_dict()[name])
    assert clf(ids, mask)["logits"].shape == (2, 3)


@no_grad()
def test_gpt_classifier_reads_the_last_real_token():
    gpt = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=16))
    clf = GPTForSequenceClassification.from_gpt(gpt, num_labels=2, pad_token_id=0)
    ids = np.array([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    logits = clf(ids, mask)["logits"].numpy()
    np.testing.assert_allclose(logits[1], clf(ids[1:, :2])["logits"].numpy()[0], atol=1e-5)
    np.testing.assert_allclose(logits, clf(ids)["logits"].numpy(), atol=1e-6)  # via pad id
    with pytest.raises(ValueError, match="right padding"):
        clf(ids, mask[:, ::-1].copy())
    out = clf(ids, mask, labels=np.array([0, 1]))
    assert out["loss"].item() > 0


@no_grad()
def test_seq2seq_masks_and_decoding():
    cfg = Seq2SeqConfig(src_vocab_size=20, tgt_vocab_size=20, d_model=16, nhead=2,
                        num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32,
                        dropout=0.0, max_len=16)
    model = Seq2SeqTransformer(cfg, generator=Generator(0)).eval()
    src = np.array([[7, 8, 9, 10], [11, 12, 0, 0]])
    src_mask = (src != 0).astype(np.int64)
    tgt = np.array([[5, 13, 14, 15], [5, 16, 17, 18]])
    logits = model(src, tgt, src_mask)["logits"].numpy()
    # source padding changes nothing
    alone = model(src[1:, :2], tgt[1:])["logits"].numpy()
    np.testing.assert_allclose(logits[1], alone[0], atol=1e-5)
    # causal decoder: position t does not see later target tokens
    changed = tgt.copy()
    changed[:, 3] = 19
    np.testing.assert_allclose(model(src, changed, src_mask)["logits"].numpy()[:, :3],
                               logits[:, :3], atol=1e-5)
    # beam search of width 1 is greedy decoding
    greedy = model.generate(src, src_mask, max_new_tokens=6)
    assert greedy == model.generate(src, src_mask, max_new_tokens=6, num_beams=1)
    assert greedy == model.beam_decode(src, beam_size=1, max_new_tokens=6)
    assert len(model.generate(src, max_new_tokens=6, num_beams=3)) == 2
