"""Public testing tools: ``gradcheck`` (float64 finite differences), ``check_op`` (all the
evidence for one op: reference, gradcheck, twin, kernel implementations, PyTorch) and, in
``tinygrad_llm.testing.strategies``, hypothesis strategies (needs the ``test`` extra)."""
from .check_op import check_op
from .gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "check_op", "gradcheck"]
