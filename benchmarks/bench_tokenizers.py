"""Byte-level BPE throughput: training and encoding, ours beside HF ``tokenizers``.

    python benchmarks/bench_tokenizers.py [--max-chars N] [--vocab-size V] [--json out.json]
                                          [--no-readme]

Input: the built-in default corpus (standard-library docstrings, about 1.5 MB). Measured:

- training: learning ``V`` tokens from the corpus (ours: pure Python; HF: Rust, which may use
  several threads; RAYON_NUM_THREADS=1 is set below so both run on one core);
- encoding the whole corpus as one string, with a cold word cache (every distinct word goes
  through the merge loop) and a warm one (the steady state of encoding more text);
- encoding it document by document (HF: ``encode_batch``), the usual way to feed HF;
- decoding the ids back.

Validation before timing: HF's trainer must learn the same merges as ours, and HF's encoder,
loaded with *our* vocab.json + merges.txt, must produce the same ids on the corpus.
Throughput is MB/s of UTF-8 input. Uses benchmarks/harness.py (timing, machine info, JSON,
README section) when it exists, otherwise the minimal fallbacks at the bottom of this file.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")          # HF tokenizers: one thread, like us
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tinygrad_llm.data import ByteLevelBPETokenizer, default_corpus  # noqa: E402

try:
    import harness  # noqa: E402
except ImportError:                                       # written by another engineer
    harness = None

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<bos>", "<eos>", "<|endoftext|>"]


def _time(fn, repeats):
    if harness is not None:
        return harness.time_fn(fn, warmup=0, repeats=repeats, min_time=0.0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def _hf_merges(hf):
    model = json.loads(hf._tokenizer.to_str())["model"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def run(max_chars, vocab_size, repeats):
    text = default_corpus(max_chars)
    mb = len(text.encode("utf-8")) / 1e6
    results = {"corpus_mb": mb, "vocab_size": vocab_size}
    ours = ByteLevelBPETokenizer.train(text, vocab_size=vocab_size)
    ids = ours.encode(text)
    assert ours.decode(ids) == text, "decode(encode(corpus)) != corpus"
    results["tokens"] = len(ids)
    docs = [d for d in text.split("\n\n") if d]

    try:
        from tokenizers.implementations import ByteLevelBPETokenizer as HFBPE
    except ImportError:
        HFBPE = None
    hf_trained = hf_loaded = None
    if HFBPE is not None:
        hf_trained = HFBPE()

        def hf_train():
            hf_trained.__init__()
            hf_trained.train_from_iterator([text], vocab_size=vocab_size, min_frequency=2,
                                           special_tokens=SPECIALS, show_progress=False)
        hf_train()
        results["same_merges_as_hf_trainer"] = _hf_merges(hf_trained) == ours.merges
        with tempfile.TemporaryDirectory() as tmp:
            ours.save(tmp)
            os.remove(os.path.join(tmp, "tokenizer_config.json"))
            hf_loaded = HFBPE(os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt"))
        hf_loaded.add_special_tokens(SPECIALS)
        if hf_loaded.encode(text).ids != ids:
            raise AssertionError("HF and ours give different ids on the same vocab/merges")
        if [e.ids for e in hf_loaded.encode_batch(docs)] != [ours.encode(d) for d in docs]:
            raise AssertionError("HF and ours differ on some document")
        results["same_ids_as_hf"] = True

    def cold():
        ours._cache.clear()
        ours.encode(text)

    timings = {
        "train (ours)": _time(lambda: ByteLevelBPETokenizer.train(text, vocab_size=vocab_size),
                              repeats),
        "encode, cold cache (ours)": _time(cold, repeats),
        "encode, warm cache (ours)": _time(lambda: ours.encode(text), repeats),
        "encode per document (ours)": _time(lambda: [ours.encode(d) for d in docs], repeats),
        "decode (ours)": _time(lambda: ours.decode(ids), repeats),
    }
    if HFBPE is not None:
        timings["train (HF tokenizers)"] = _time(hf_train, repeats)
        timings["encode (HF tokenizers)"] = _time(lambda: hf_loaded.encode(text), repeats)
        timings["encode per document (HF encode_batch)"] = _time(
            lambda: hf_loaded.encode_batch(docs), repeats)
        timings["decode (HF tokenizers)"] = _time(lambda: hf_loaded.decode(ids), repeats)
    results["timings"] = timings
    return results


def table(results):
    rows = []
    def baseline(name):
        if name.startswith("train"):
            return "train (HF tokenizers)"
        if name.startswith("encode per document"):
            return "encode per document (HF encode_batch)"
        return "encode (HF tokenizers)" if name.startswith("encode") else \
            "decode (HF tokenizers)"
    for name, t in results["timings"].items():
        base = results["timings"].get(baseline(name))
        rows.append({
            "step": name, "median s": f"{t['median']:.3f}",
            "MB/s": f"{results['corpus_mb'] / t['median']:.2f}",
            "time / HF": f"{t['median'] / base['median']:.1f}x" if base else "-",
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-chars", type=int, default=None, help="corpus prefix to use")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__),
                                                       "results", "bench_tokenizers.json"))
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.max_chars, args.vocab_size, args.repeats)
    rows = table(results)
    md = markdown_table(rows, list(rows[0]))
    head = (f"Corpus: default corpus, {results['corpus_mb']:.2f} MB, vocab {results['vocab_size']}"
            f", {results['tokens']:,} tokens. Same merges as HF's trainer: "
            f"{results.get('same_merges_as_hf_trainer', 'n/a')}; same ids as HF's encoder: "
            f"{results.get('same_ids_as_hf', 'n/a')}. One thread (RAYON_NUM_THREADS=1).")
    print(head)
    print(md)
    info = machine_info()
    write_json(args.json, {"machine": info, "results": results})
    if harness is not None and not args.no_readme:
        harness.update_readme("Byte-level BPE tokenizer (bench_tokenizers.py)",
                              head + "\n\n" + md)
    return results


# ----- fallbacks while benchmarks/harness.py does not exist -----------------------------------

def markdown_table(rows, columns):
    if harness is not None:
        return harness.markdown_table(rows, columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def machine_info():
    if harness is not None:
        return harness.machine_info()
    return {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count()}


def write_json(path, obj):
    if harness is not None:
        return harness.write_json(path, obj)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)


if __name__ == "__main__":
    main()
