"""Data: cleaning, tokenizers, datasets, loaders, the built-in corpus and generated tasks.

Everything here works on plain Python strings and NumPy arrays; nothing imports the Tensor.
"""
from .bpe import ENDOFTEXT, ByteLevelBPETokenizer, read_merges, write_merges
from .bpe_train import train_bpe
from .bytelevel import bytes_to_unicode, gpt2_pretokenize
from .char import CharTokenizer
from .cleaning import (Pipeline, clean_text, lowercase, make_cleaner, normalize_unicode,
                       normalize_whitespace, remove_punctuation, remove_special_characters,
                       remove_stopwords, stem, strip_html)
from .corpus import (TextDecodeError, corpus_documents, default_corpus, iter_text_files,
                     load_text, load_texts, read_text_file)
from .datasets import (ClassificationDataset, LMWindowDataset, Seq2SeqDataset, lm_windows,
                       stratified_split)
from .loader import ArrayDataset, DataLoader, PadCollate, Subset, default_collate
from .pretraining import (IGNORE_INDEX, MaskedLMCollate, NegativeSampler, NextSentenceDataset,
                          SkipGramDataset, make_nsp_pairs, mask_tokens, skipgram_pairs,
                          split_sentences, subsample_frequent)
from .stopwords import ENGLISH_STOP_WORDS
from .tasks import (addition_pairs, copy_task, date_pairs, format_date, reverse_task,
                    sentiment_task, sort_task)
from .tokenizer_base import (DEFAULT_SPECIAL_TOKENS, BatchEncoding, Tokenizer, pad_sequences,
                             truncate_pair)
from .word import WordTokenizer


def load_tokenizer(path):
    """Load any tokenizer saved by this package: a directory is byte-level BPE (vocab.json +
    merges.txt), a JSON file is dispatched on its ``type`` field."""
    import json
    import os
    if os.path.isdir(path):
        return ByteLevelBPETokenizer.load(path)
    with open(path, encoding="utf-8") as f:
        kind = json.load(f).get("type")
    if kind == ByteLevelBPETokenizer.kind:          # the tokenizer_config.json of a BPE folder
        return ByteLevelBPETokenizer.load(os.path.dirname(os.path.abspath(path)))
    classes = {cls.kind: cls for cls in (CharTokenizer, WordTokenizer)}
    if kind not in classes:
        raise ValueError(f"{path} holds a tokenizer of unknown type {kind!r}; known: "
                         f"{sorted(classes)} and byte-level BPE directories")
    return classes[kind].load(path)


__all__ = [
    "ENDOFTEXT", "ByteLevelBPETokenizer", "read_merges", "write_merges", "train_bpe",
    "bytes_to_unicode", "gpt2_pretokenize", "CharTokenizer", "Pipeline", "clean_text",
    "lowercase", "make_cleaner", "normalize_unicode", "normalize_whitespace",
    "remove_punctuation", "remove_special_characters", "remove_stopwords", "stem", "strip_html",
    "corpus_documents", "default_corpus", "iter_text_files", "load_text", "load_texts",
    "TextDecodeError", "read_text_file",
    "ClassificationDataset", "LMWindowDataset", "Seq2SeqDataset", "lm_windows",
    "stratified_split", "ArrayDataset", "DataLoader", "PadCollate", "Subset", "default_collate",
    "IGNORE_INDEX", "MaskedLMCollate", "NegativeSampler", "NextSentenceDataset",
    "SkipGramDataset", "make_nsp_pairs", "mask_tokens", "skipgram_pairs", "split_sentences",
    "subsample_frequent", "ENGLISH_STOP_WORDS", "addition_pairs", "copy_task", "date_pairs",
    "format_date", "reverse_task", "sentiment_task", "sort_task", "DEFAULT_SPECIAL_TOKENS",
    "BatchEncoding", "Tokenizer", "pad_sequences", "truncate_pair", "WordTokenizer",
    "load_tokenizer",
]
