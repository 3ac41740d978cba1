"""Evaluation metrics in NumPy: classification, perplexity, BLEU, ROUGE, embeddings.

    from tinygrad_llm.metrics import accuracy, f1_score, perplexity, bleu, rouge
"""
from .bleu import BLEUScore, bleu, compute_bleu, corpus_bleu, sentence_bleu, tokenize_13a
from .classification import (UndefinedMetricWarning, accuracy, confusion_matrix, f1_score,
                             fbeta_score, precision, precision_recall_fscore_support, recall)
from .embeddings import analogy, cosine_similarity, most_similar, nearest_neighbors
from .language import (perplexity, perplexity_from_log_probs, perplexity_from_logits,
                       token_log_probs)
from .rouge import RougeScore, rouge, rouge_l, rouge_n, rouge_scores, rouge_tokenize

__all__ = [
    "BLEUScore", "bleu", "compute_bleu", "corpus_bleu", "sentence_bleu", "tokenize_13a",
    "UndefinedMetricWarning", "accuracy", "confusion_matrix", "f1_score", "fbeta_score",
    "precision", "precision_recall_fscore_support", "recall",
    "analogy", "cosine_similarity", "most_similar", "nearest_neighbors",
    "perplexity", "perplexity_from_log_probs", "perplexity_from_logits", "token_log_probs",
    "RougeScore", "rouge", "rouge_l", "rouge_n", "rouge_scores", "rouge_tokenize",
]
