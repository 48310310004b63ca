"""nnref: a verified NumPy reference for neural-network building blocks.

``import nnref`` needs NumPy only. Ops live in :mod:`nnref.ops` (re-exported here), the gradient
checker in :mod:`nnref.check`, TensorFlow adapters in :mod:`nnref.oracles` (optional extra).
"""

from nnref._machine import keep_freed_memory
from nnref._threads import shorten_blas_spin
from nnref.data.onehot import one_hot
from nnref.metrics import accuracy, argmax
from nnref.ops import *  # noqa: F403  (the op namespace is the public API)
from nnref.ops import __all__ as _ops_all

__version__ = "0.1.0"
__all__ = [
    "__version__",
    "accuracy",
    "argmax",
    "keep_freed_memory",
    "one_hot",
    "shorten_blas_spin",
    *_ops_all,
]
