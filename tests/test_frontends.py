"""The documents' APIs on our models: Keras-style Sequential and HF-style Trainer/pipeline."""
import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import keras
from tinygrad_llm.data import WordTokenizer, sentiment_task
from tinygrad_llm.hf import Trainer, TrainingArguments, pipeline
from tinygrad_llm.keras import Sequential, layers


def sentiment_arrays(n, seed):
    texts, labels = sentiment_task(n, seed=seed)
    return texts, labels


def test_keras_text_classifier_learns_and_reports():
    texts, labels = sentiment_arrays(600, 0)
    tok = WordTokenizer.from_corpus(texts)
    x = tok(texts, padding="max_length", max_length=12, truncation=True)["input_ids"]
    xt, yt = x[:500], labels[:500]
    xv, yv = x[500:], labels[500:]
    model = Sequential([layers.Embedding(input_dim=tok.vocab_size, output_dim=16),
                        layers.LSTM(32),
                        layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], learning_rate=1e-2)
    history = model.fit(xt, yt, epochs=6, batch_size=32, validation_data=(xv, yv), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    loss, acc = model.evaluate(xv, yv)
    assert acc > 0.85, history.history  # held-out accuracy
    probs = model.predict(xv[:5])
    assert probs.shape == (5, 2) and np.allclose(probs.sum(-1), 1, atol=1e-5)


def test_keras_losses_match_their_formulas():
    p = tg.tensor(np.array([[0.2, 0.8], [0.6, 0.4]]))
    y = np.array([1, 0])
    assert keras.sparse_categorical_crossentropy(y, p).item() == pytest.approx(
        -(np.log(0.8) + np.log(0.6)) / 2)
    onehot = np.eye(2)[y]
    assert keras.categorical_crossentropy(onehot, p).item() == pytest.approx(
        -(np.log(0.8) + np.log(0.6)) / 2)
    q = tg.tensor(np.array([0.9, 0.2]))
    assert keras.binary_crossentropy(np.array([1, 0]), q).item() == pytest.approx(
        -(np.log(0.9) + np.log(0.8)) / 2)


class TinyClassifier(tg.nn.Module):
    """Embedding -> mean over unpadded tokens -> Linear: an HF-style model(**batch)."""

    def __init__(self, vocab, n_classes=2):
        super().__init__()
        self.emb = tg.nn.Embedding(vocab, 16, generator=tg.Generator(0))
        self.head = tg.nn.Linear(16, n_classes, generator=tg.Generator(1))

    def forward(self, input_ids, attention_mask, labels=None):
        mask = attention_mask.float().unsqueeze(-1)                       # (B, T, 1)
        pooled = (self.emb(input_ids) * mask).sum(1) / mask.sum(1)        # (B, 16)
        logits = self.head(pooled)
        loss = None if labels is None else tg.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


def counting_task(n, seed):
    """Token sequences of varying length; label 1 when token 3 outnumbers token 4."""
    rng = np.random.default_rng(seed)
    data = []
    while len(data) < n:
        ids = rng.integers(1, 8, rng.integers(4, 12))
        threes, fours = (ids == 3).sum(), (ids == 4).sum()
        if threes != fours:
            data.append({"input_ids": ids.tolist(), "labels": int(threes > fours)})
    return data


def test_hf_trainer_trains_evaluates_and_saves(tmp_path):
    data = counting_task(400, 1)
    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=4,
                             per_device_train_batch_size=16, learning_rate=3e-2,
                             warmup_steps=5, disable_tqdm=True)
    trainer = Trainer(model=TinyClassifier(8), args=args,
                      train_dataset=data[:300], eval_dataset=data[300:],
                      compute_metrics=lambda p: {
                          "accuracy": (p.predictions.argmax(-1) == p.label_ids).mean()})
    out = trainer.train()
    assert out.global_step == 4 * 19
    metrics = trainer.evaluate()  # held-out examples
    assert metrics["eval_accuracy"] > 0.85 and metrics["eval_loss"] < 0.5, metrics
    assert (tmp_path / "loss.png").exists()
    trainer.save_model(str(tmp_path / "model"))
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_text_generation_pipeline_from_a_model_object():
    from tinygrad_llm.data import CharTokenizer
    from tinygrad_llm.models import GPT, GPTConfig
    tok = CharTokenizer.from_corpus(["hello world"])
    model = GPT(GPTConfig(block_size=32, vocab_size=tok.vocab_size, n_layer=1, n_head=2,
                          n_embd=8))
    gen = pipeline("text-generation", model=model, tokenizer=tok)
    out = gen("hello", max_new_tokens=5, num_return_sequences=2)
    assert len(out) == 2 and all(o["generated_text"].startswith("hello") for o in out)
    with pytest.raises(ValueError, match="not supported"):
        pipeline("translation", model=model, tokenizer=tok)
