"""``tinygrad_llm.utils``: torch.utils's names. ``utils.data`` holds Dataset, DataLoader and
the samplers (``from tinygrad_llm.utils.data import DataLoader, TensorDataset``)."""
from . import data

__all__ = ["data"]
