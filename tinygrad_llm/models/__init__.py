"""Models, one per file, each with a @dataclass config.

    gpt.py        GPT (decoder-only Transformer, GPT-2 names, KV-cache generation);
                  gpt2_hf.py reads and writes Hugging Face GPT-2 folders
    lstm.py       the LSTM language model (Embedding -> LSTM -> Linear)
    word2vec.py   skip-gram with the cosine embedding loss or negative sampling
    seed004.py    seed 004's autoregressive formulas and its Embedding -> Linear -> Linear model
    rl.py         REINFORCE with a baseline and tabular Q-learning
    bert.py       BERT: MLM + NSP pre-training, [CLS] sequence classification
    gpt_classifier.py   GPT for sequence classification (last non-pad token)
    seq2seq.py    the Transformer encoder-decoder of seed 003 (post-LN), greedy and beam decoding
"""
from . import rl
from .bert import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from .gpt import GPT, GPTConfig
from .gpt_classifier import GPTForSequenceClassification
from .lstm import LSTMConfig, LSTMLanguageModel
from .seed004 import AutoRegressiveModel, MultiLabelRegressionModel, Seed004LM
from .seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from .word2vec import SkipGramNegativeSampling, Word2Vec, Word2VecConfig

__all__ = ["GPT", "GPTConfig", "LSTMConfig", "LSTMLanguageModel", "Word2Vec", "Word2VecConfig",
           "SkipGramNegativeSampling", "Seed004LM", "AutoRegressiveModel",
           "MultiLabelRegressionModel", "rl", "BertConfig", "BertModel", "BertForPreTraining",
           "BertForSequenceClassification", "GPTForSequenceClassification", "Seq2SeqConfig",
           "Seq2SeqTransformer"]
