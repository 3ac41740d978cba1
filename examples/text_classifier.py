"""Seed 000's text classifier: Keras Embedding -> LSTM(128) -> Dense(softmax), trained with
sparse categorical cross-entropy and Adam, evaluated by loss, accuracy, precision and recall.

    python examples/text_classifier.py [--quick] [--epochs 6] [--samples 4000] [--seed 0]

The documents' workflow, step by step:

1. Data (3.1.1 collect, clean, label): labelled reviews from ``data.sentiment_task`` (a small
   grammar with negation, "not good", and contrast, "..., but ..."), dressed up as raw web
   text (HTML tags, entities, capitals, "!!!", emoji) so that cleaning has work to do.
2. Cleaning (``data.make_cleaner``): strip HTML -> NFKC -> lowercase -> remove punctuation
   -> remove special characters -> collapse whitespace. Stopword removal stays off: the
   English stopword list holds "not" and "but", which carry the label here (the script counts
   the training texts it would change).
3. Tokenization: a word vocabulary from the training split (``WordTokenizer``); each text
   becomes ids padded on the LEFT, so that the LSTM's last state, which the Dense layer
   reads, comes right after the last real word rather than after a run of padding.
4. Model, as seed 000 writes it with tf.keras (``tinygrad_llm.keras`` here)::

       model = Sequential([Embedding(input_dim=vocab_size, output_dim=embedding_dim),
                           LSTM(units=128), Dense(units=num_classes, activation='softmax')])
       model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',
                     metrics=['accuracy'])
       model.fit(x_train, y_train, epochs=10)
       loss, accuracy = model.evaluate(x_test, y_test)

   with the loss -(1/N) sum_i log p_i[y_i]. Then precision TP / (TP + FP), recall
   TP / (TP + FN) and F1 on the held-out test split (``tinygrad_llm.metrics``), and the
   accuracy on the test texts that do not also occur in the training split (the grammar is
   small enough that some sentences repeat).
"""
import argparse
import time

import numpy as np

from tinygrad_llm import keras
from tinygrad_llm.data import (ENGLISH_STOP_WORDS, WordTokenizer, make_cleaner,
                               sentiment_task, stratified_split)
from tinygrad_llm.metrics import accuracy, f1_score, precision, recall

EMOJI = {1: ("\U0001F600", "\U0001F44D", ":)"), 0: ("\U0001F620", "\U0001F44E", ":(")}


def raw_reviews(texts, labels, seed=0):
    """Make clean generated sentences look scraped from the web (deterministic)."""
    rng = np.random.default_rng(seed)
    out = []
    for text, label in zip(texts, labels):
        words = text.split()
        k = rng.integers(len(words))
        if rng.random() < 0.3:
            words[k] = words[k].upper()                                # SHOUTING
        if rng.random() < 0.3:
            words[k] = f"<b>{words[k]}</b>"                            # inline markup
        text = " ".join(words)
        text = text[0].upper() + text[1:]
        text += ("!!!", ".", "...", " &amp; more")[rng.integers(4)]
        if rng.random() < 0.4:
            text += " " + EMOJI[int(label)][rng.integers(3)]
        out.append(f"<p>{text}</p>" if rng.random() < 0.5 else f"<div>  {text}\t</div>")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--embedding-dim", type=int, default=64)
    p.add_argument("--units", type=int, default=128, help="LSTM units (seed 000: 128)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam (Keras's default is 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.epochs = min(args.samples, 1500), min(args.epochs, 4)
        args.units = min(args.units, 64)
    say = (lambda *a: None) if args.quiet else print
    t0 = time.time()

    texts, labels = sentiment_task(args.samples, seed=args.seed)
    raw = raw_reviews(texts, labels, seed=args.seed)
    clean = make_cleaner(strip_html=True, normalize_unicode="NFKC", lowercase=True,
                         remove_punctuation=True, remove_special_characters=True,
                         normalize_whitespace=True, remove_stopwords=False)
    cleaned = clean.map(raw)
    say(f"raw:     {raw[1]!r}\ncleaned: {cleaned[1]!r}")
    train_idx, val_idx, test_idx = stratified_split(labels, 0.1, 0.2, seed=args.seed)
    stop_changed = sum(any(w in ENGLISH_STOP_WORDS for w in ("not", "but")
                           if w in cleaned[i].split()) for i in train_idx)
    say(f"stopword removal would delete 'not'/'but' from {stop_changed} of "
        f"{len(train_idx)} training texts: left on")

    tok = WordTokenizer.from_corpus([cleaned[i] for i in train_idx])
    ids = tok.encode_batch(cleaned, padding=True, padding_side="left")["input_ids"]
    x_train, y_train = ids[train_idx], labels[train_idx]
    x_val, y_val = ids[val_idx], labels[val_idx]
    x_test, y_test = ids[test_idx], labels[test_idx]
    say(f"vocab {tok.vocab_size}, sequences of {ids.shape[1]} ids; "
        f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)}")

    model = keras.Sequential([
        keras.layers.Embedding(input_dim=tok.vocab_size, output_dim=args.embedding_dim),
        keras.layers.LSTM(units=args.units),
        keras.layers.Dense(units=2, activation="softmax"),
    ], seed=args.seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], learning_rate=args.lr)
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_val, y_val), verbose=not args.quiet,
                        seed=args.seed)
    loss, acc = model.evaluate(x_test, y_test)
    pred = model.predict(x_test).argmax(-1)
    # the grammar is small: some test sentences also occur in training; score the rest too
    seen = {cleaned[i] for i in train_idx}
    unseen = np.array([cleaned[i] not in seen for i in test_idx])
    results = {"test_loss": loss, "test_accuracy": acc,
               "unseen_fraction": float(unseen.mean()),
               "unseen_accuracy": accuracy(y_test[unseen], pred[unseen]),
               "accuracy": accuracy(y_test, pred), "precision": precision(y_test, pred),
               "recall": recall(y_test, pred), "f1": f1_score(y_test, pred),
               "history": history.history, "vocab_size": tok.vocab_size}
    say(f"test: loss {loss:.4f}  accuracy {acc:.4f}  precision {results['precision']:.4f}  "
        f"recall {results['recall']:.4f}  F1 {results['f1']:.4f}")
    say(f"on the {unseen.sum()} test texts that never occur in training: accuracy "
        f"{results['unseen_accuracy']:.4f}")
    probe = ["The movie was NOT good!!!", "<p>i loved the music &amp; the story</p>",
             "the food was great, but the service was awful"]
    probe_ids = tok.encode_batch(clean.map(probe), padding=True, padding_side="left")
    probs = model.predict(probe_ids["input_ids"])[:, 1]
    for text, prob in zip(probe, probs):
        say(f"  P(positive) = {prob:.2f}  {text}")
    results["seconds"] = time.time() - t0
    say(f"{results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
