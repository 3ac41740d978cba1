"""Public testing tools: ``gradcheck`` (float64 finite differences), ``gradgradcheck``
(second derivatives against finite differences of the first) with the hypothesis-ready
properties ``check_hessian_symmetric``, ``check_hvp_matches_finite_differences`` and
``check_jvp_vjp_adjoint``, ``check_op`` (all the evidence for one op: reference, gradcheck,
twin, kernel implementations, PyTorch) and, in ``tinygrad_llm.testing.strategies``, hypothesis
strategies (needs the ``test`` extra)."""
from .check_op import check_op
from .gradcheck import GradcheckError, gradcheck
from .gradgradcheck import (GradgradcheckError, check_hessian_symmetric,
                            check_hvp_matches_finite_differences, check_jvp_vjp_adjoint,
                            gradgradcheck)

__all__ = ["GradcheckError", "GradgradcheckError", "check_hessian_symmetric",
           "check_hvp_matches_finite_differences", "check_jvp_vjp_adjoint", "check_op",
           "gradcheck", "gradgradcheck"]
