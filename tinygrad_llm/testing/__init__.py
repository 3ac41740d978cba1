"""Public testing tools: ``gradcheck`` (float64 finite differences) and, in
``tinygrad_llm.testing.strategies``, hypothesis strategies (needs the ``test`` extra)."""
from .gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "gradcheck"]
