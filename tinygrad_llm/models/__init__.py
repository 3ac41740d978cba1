"""Models, one per file, each with a @dataclass config.

    gpt.py        GPT (decoder-only Transformer, GPT-2 names, KV-cache generation);
                  gpt2_hf.py reads and writes Hugging Face GPT-2 folders
    lstm.py       the LSTM language model (Embedding -> LSTM -> Linear)
    word2vec.py   skip-gram with the cosine embedding loss or negative sampling
    seed004.py    seed 004's autoregressive formulas and its Embedding -> Linear -> Linear model
    rl.py         REINFORCE with a baseline and tabular Q-learning
"""
from . import rl
from .gpt import GPT, GPTConfig
from .lstm import LSTMConfig, LSTMLanguageModel
from .seed004 import AutoRegressiveModel, MultiLabelRegressionModel, Seed004LM
from .word2vec import SkipGramNegativeSampling, Word2Vec, Word2VecConfig

__all__ = ["GPT", "GPTConfig", "LSTMConfig", "LSTMLanguageModel", "Word2Vec", "Word2VecConfig",
           "SkipGramNegativeSampling", "Seed004LM", "AutoRegressiveModel",
           "MultiLabelRegressionModel", "rl"]
