"""Public gradient checker: :func:`check_vjp`, :func:`check_grad`, and tolerance helpers.

NumPy only. See ``check_vjp`` for the method (Richardson-extrapolated central differences with
derived steps and tolerances, float64 shadow for float32, kink detection, bisection).
"""

from nnref.check._core import (
    AUTO_EXACT_MAX_ENTRIES,
    GAMMA,
    GAMMA_FD,
    GAMMA_FD64,
    GAMMA_HALF,
    CheckResult,
    Comparison,
    GradientCheckError,
    check_grad,
    check_vjp,
)

__all__ = [
    "AUTO_EXACT_MAX_ENTRIES",
    "GAMMA",
    "GAMMA_FD",
    "GAMMA_FD64",
    "GAMMA_HALF",
    "CheckResult",
    "Comparison",
    "GradientCheckError",
    "check_grad",
    "check_vjp",
]
