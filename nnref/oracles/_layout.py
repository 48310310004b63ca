"""Layout and padding arithmetic for the JAX and PyTorch oracle legs, in one place.

nnref (as TF) uses NHWC activations and HWIO kernels; PyTorch uses NCHW and OIHW. The legs
permute inside the framework's autodiff, so gradients come back in nnref's layout by the
framework's own transpose rule.

TF's SAME padding is asymmetric when the total pad is odd (the extra row/column goes
bottom/right). PyTorch's ``padding=`` is symmetric (and ``padding='same'`` refuses strides > 1),
so the PyTorch legs pad explicitly with the pads computed here. The formula is written again
here, not imported from :mod:`nnref.ops._windows`, so that a wrong pad in nnref cannot be
mirrored by its own oracle:

- ``SAME``: ``out = ceil(n / s)``, ``total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)``,
  ``before = total // 2``, ``after = total - before``;
- ``VALID``: no pads;
- explicit ``[[0, 0], [top, bottom], [left, right], [0, 0]]``: those pads.

NumPy only; nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: ``x.permute(NHWC_TO_NCHW)`` turns an NHWC activation into NCHW.
NHWC_TO_NCHW: tuple[int, int, int, int] = (0, 3, 1, 2)
#: ``y.permute(NCHW_TO_NHWC)`` turns an NCHW activation back into NHWC.
NCHW_TO_NHWC: tuple[int, int, int, int] = (0, 2, 3, 1)
#: ``w.permute(HWIO_TO_OIHW)`` turns a TF kernel (KH, KW, C_in, C_out) into PyTorch's.
HWIO_TO_OIHW: tuple[int, int, int, int] = (3, 2, 0, 1)

Pads = tuple[tuple[int, int], tuple[int, int]]


def spatial(v: Any) -> tuple[int, int]:
    """``(h, w)`` from an int, an ``[h, w]`` pair or a ``[1, h, w, 1]`` list (TF's forms).

    Raises
    ------
    ValueError
        For any other length.
    """
    if isinstance(v, int):
        return v, v
    seq = [int(u) for u in v]
    if len(seq) == 1:
        return seq[0], seq[0]
    if len(seq) == 2:
        return seq[0], seq[1]
    if len(seq) == 4:
        return seq[1], seq[2]
    raise ValueError(f"oracle layout: expected an int, [h, w] or [1, h, w, 1], got {v!r}")


def explicit_pads(padding: Sequence[Sequence[int]]) -> Pads:
    """``((top, bottom), (left, right))`` from TF's ``[[0, 0], [t, b], [l, r], [0, 0]]``."""
    rows = [tuple(int(u) for u in r) for r in padding]
    if len(rows) != 4:
        raise ValueError(f"oracle layout: explicit padding needs 4 pairs, got {padding!r}")
    return (rows[1][0], rows[1][1]), (rows[2][0], rows[2][1])  # type: ignore[return-value]


def tf_pads(
    padding: Any,
    size: tuple[int, int],
    window: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int] = (1, 1),
) -> Pads:
    """TF's pads ``((top, bottom), (left, right))`` for a conv or pool window.

    Parameters
    ----------
    padding : "SAME", "VALID" or [[0, 0], [t, b], [l, r], [0, 0]]
    size : (H, W)
        Input spatial size.
    window : (KH, KW)
        Kernel or pool window, before dilation.
    strides, dilations : (sh, sw), (dh, dw)

    Examples
    --------
    >>> tf_pads("SAME", (8, 8), (3, 3), (2, 2))   # odd total 1: all of it after
    ((0, 1), (0, 1))
    """
    if isinstance(padding, str):
        if padding == "VALID":
            return (0, 0), (0, 0)
        if padding != "SAME":
            raise ValueError(f"oracle layout: unknown padding {padding!r}")
        pads = []
        for n, k, s, d in zip(size, window, strides, dilations, strict=True):
            out = -(-n // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads[0], pads[1]
    return explicit_pads(padding)


def torch_pad_arg(pads: Pads) -> tuple[int, int, int, int]:
    """``torch.nn.functional.pad``'s argument for NCHW: last axis first, ``(l, r, t, b)``."""
    (t, b), (left, right) = pads
    return left, right, t, b
