"""Models, one per file, each with a @dataclass config: GPT (gpt.py), ..."""
from .gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
