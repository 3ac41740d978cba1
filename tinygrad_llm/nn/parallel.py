"""``tinygrad_llm.nn.parallel.DistributedDataParallel`` (PyTorch's path); the implementation
lives in tinygrad_llm/distributed/ddp.py."""
from ..distributed.ddp import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
