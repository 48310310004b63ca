"""Flush-to-zero arithmetic, as TF's CPU kernels compute.

TF runs its CPU kernels with the processor's flush-to-zero and denormals-are-zero modes on
(``ScopedFlushDenormal`` in ``tensorflow/core/platform/denormal.h``): a subnormal operand counts
as zero, and a subnormal result becomes a zero of its sign. Keras' optimizer updates run in that
mode (measured: Adam's ``v`` after ``g = 1e-20`` in float32 is 0 in Keras, ``2.98e-43`` in plain
IEEE arithmetic), so nnref's optimizers, bit-exact with Keras, compute in it too.

It is also the fast mode: on Intel CPUs every subnormal operand or result costs a microcode
assist. Measured on a Xeon (2 cores, AVX-512): a 784-512-10 MLP trained with Adam on one batch
held 72 Ki subnormals in its 814 Ki state elements after 1000 steps, and its step went from
2.7 to 5.4 ms.

:func:`flush_subnormals` switches the calling thread's mode (MXCSR's FTZ and DAZ bits on
x86-64, FPCR's FZ bit on AArch64, through glibc's ``fegetenv``/``fesetenv``) and restores it on
exit; a probe at first use checks that the switch has the effect. Where it does not (other
platforms), the block runs in IEEE mode and the caller emulates the mode, one pass per
operation (:class:`Arithmetic`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import platform
import struct
import sys
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar

import numpy as np

A = TypeVar("A", np.ndarray, np.floating)

#: Where the control bits sit in glibc's ``fenv_t`` (which is smaller than this buffer):
#: x86-64's ``__mxcsr`` after the 28-byte x87 environment (FTZ is bit 15, DAZ bit 6);
#: AArch64's ``__fpcr`` first (FZ, bit 24, flushes operands and results alike).
_CONTROL = {"x86_64": (28, 0x8040), "aarch64": (0, 1 << 24)}
_ENV_BYTES = 64


def flush(a: A) -> A:
    """Subnormal entries of ``a`` replaced by zeros of their sign: in place for an array
    (returned), a new value for a NumPy scalar. What the flush-to-zero mode does to a result.

    float16 and long double are left as they are, as the mode leaves them: NumPy computes half
    precision in float32 and converts the result in software, and long double on the x87 unit,
    which the mode does not reach."""
    if a.dtype not in (np.float32, np.float64):
        return a
    tiny = np.finfo(a.dtype).tiny
    if isinstance(a, np.ndarray):
        np.copysign(0, a, out=a, where=np.abs(a) < tiny)
        return a
    return np.copysign(a.dtype.type(0), a) if abs(a) < tiny else a


def _flushed_copy(a: A) -> A:
    return flush(a.copy())


def _keep(a: A) -> A:
    return a


class Arithmetic(NamedTuple):
    """What a block in flush-to-zero arithmetic applies to its data: ``result`` to each result
    it computes (in place), ``operand`` to each array or scalar it reads (the value to use);
    ``emulated``: whether they do anything (else both return their argument)."""

    result: Callable[[Any], Any]
    operand: Callable[[Any], Any]
    emulated: bool


_HARDWARE = Arithmetic(_keep, _keep, False)
_EMULATED = Arithmetic(flush, _flushed_copy, True)


class _Switch:
    """The calling thread's floating-point environment, saved, with the flush bits set (or, for
    the probe, cleared), restored on exit."""

    def __init__(self, libm: ctypes.CDLL, offset: int, bits: int) -> None:
        self.get, self.set = libm.fegetenv, libm.fesetenv
        for f in (self.get, self.set):
            f.argtypes, f.restype = [ctypes.c_void_p], ctypes.c_int
        self.offset, self.bits = offset, bits

    @contextlib.contextmanager
    def on(self, flush: bool = True) -> Iterator[None]:
        saved = ctypes.create_string_buffer(_ENV_BYTES)
        if self.get(saved) != 0:
            raise OSError("fegetenv failed")
        mode = ctypes.create_string_buffer(saved.raw, _ENV_BYTES)
        (word,) = struct.unpack_from("I", mode, self.offset)
        word = word | self.bits if flush else word & ~self.bits
        struct.pack_into("I", mode, self.offset, word)
        try:  # entered first: an interrupt during fesetenv still restores
            if self.set(mode) != 0:
                raise OSError("fesetenv failed")
            yield
        finally:
            self.set(saved)


def _flushes(switch: _Switch) -> bool:
    """Does the switch give IEEE results with the bits cleared and flush both operands and
    results with them set, for float32 and float64, and does leaving it restore the thread's mode
    as it was (which may be flushing already: PyTorch's ``set_flush_denormal(True)`` turns it on
    for good)? Under ``errstate(all="ignore")``: flushing is an underflow, which a caller's
    ``np.seterr(under="raise")`` would turn into an error."""
    operands = []
    for dt, ints in ((np.float32, np.uint32), (np.float64, np.uint64)):
        # Bit patterns, not conversions (which the mode would flush): the smallest normal and
        # the smallest subnormal; 33 of each, for the SIMD loop and its tail.
        exponent_one = ints(1) << ints(np.finfo(dt).nmant)
        tiny, sub = np.full(33, exponent_one, ints).view(dt), np.full(33, 1, ints).view(dt)
        operands.append((dt, ints, tiny, sub))

    def results() -> list[np.ndarray]:  # as bit patterns: DAZ makes subnormals compare as 0
        out = []
        for dt, ints, tiny, sub in operands:
            out += [np.multiply(tiny, dt(0.5)).view(ints), np.multiply(sub, dt(2.0**60)).view(ints)]
        return out

    with np.errstate(all="ignore"):
        before = results()
        try:
            with switch.on(flush=False):
                ieee = results()
            with switch.on():
                flushed = results()
        except OSError:
            return False
        after = results()
    return (
        all(r.all() for r in ieee)
        and not any(r.any() for r in flushed)
        and all(a.tobytes() == b.tobytes() for a, b in zip(before, after, strict=True))
    )


@functools.cache
def _switch() -> _Switch | None:
    where = _CONTROL.get(platform.machine())
    if not sys.platform.startswith("linux") or where is None:
        return None
    try:
        switch = _Switch(ctypes.CDLL("libm.so.6"), *where)
    except (OSError, AttributeError):
        return None
    return switch if _flushes(switch) else None


def hardware_flush() -> bool:
    """Whether :func:`flush_subnormals` switches the processor's mode here (else it emulates)."""
    return _switch() is not None


@contextlib.contextmanager
def flush_subnormals() -> Iterator[Arithmetic]:
    """Run the block in flush-to-zero, denormals-are-zero arithmetic, as TF's CPU kernels do.

    Yields what the block applies to its operands and results: nothing when the processor's
    mode is on (for this thread only: other threads enter their own block), else the emulation
    (:func:`flush` on each result, flushed copies of the operands). The emulation equals the
    mode except for results a quarter to half an ulp below the smallest normal: IEEE gradual
    underflow rounds them up to it, while the processor (x86: tininess after rounding to full
    precision) flushes them. float16 and long double are computed in IEEE arithmetic either
    way (:func:`flush`)."""
    switch = _switch()
    if switch is None:
        yield _EMULATED
        return
    with switch.on():
        yield _HARDWARE
