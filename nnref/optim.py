"""Optimizers as pure ``init(params)`` / ``update(grads, state, params)`` pairs matching Keras 3.

Bit-exact with ``keras.optimizers.SGD/Adam/RMSprop`` in float32 and float64, including Keras'
float32 rounding: the learning rate is a float32 variable (``0.1 -> 0.10000000149011612`` in
float64), and SGD's ``momentum`` and Adam's ``beta_1``/``beta_2`` in the bias-correction powers
pass through ``keras.ops.cast``, which goes through float32. ``1 - beta``, ``rho``, ``1 - rho``,
``epsilon`` and RMSprop's ``momentum`` stay exact.

``params`` and ``grads`` are sequences of arrays; ``update`` returns new arrays and a new state,
never mutating its inputs.

Arithmetic: flush-to-zero, as TF's CPU kernels compute (:mod:`nnref._subnormals`): a subnormal
operand counts as zero and a subnormal result becomes zero, so float32 and float64 slots never
hold subnormals (IEEE arithmetic would keep ``v = 2.98e-43`` after ``g = 1e-20`` in float32 where
Keras keeps 0). float16 and long double parameters are updated in IEEE arithmetic.

Speed: every result is written with ``out=`` into the arrays ``update`` returns, in Keras'
operation order (so the bits are unchanged), with one scratch array per parameter block at most.
The elements of all parameters together are split into contiguous ranges over ``NNREF_NUM_THREADS``
threads (:mod:`nnref._threads`; NumPy's ufuncs release the GIL); each element's arithmetic is
the same for any split, so the results do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from nnref._subnormals import Arithmetic, flush_subnormals
from nnref._threads import parallel_for
from nnref._validate import is_int, is_real

Params = list[np.ndarray]


class OptState(NamedTuple):
    """``iterations`` as Keras (updates applied so far) and named slot lists."""

    iterations: int
    slots: dict[str, list[np.ndarray]]


class Optimizer(NamedTuple):
    name: str
    config: dict[str, Any]
    init: Callable[[Sequence[np.ndarray]], OptState]
    update: Callable[
        [Sequence[np.ndarray], OptState, Sequence[np.ndarray]], tuple[Params, OptState]
    ]


def _f32(c: float, dtype: np.dtype) -> Any:
    """A Python float as Keras sees it after a float32 variable or ``ops.cast``."""
    return dtype.type(np.float32(c))


def _check_lr(name: str, learning_rate: Any) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, float):
        raise TypeError(
            f"{name}: 'learning_rate' must be a Python float (as Keras requires), "
            f"got {learning_rate!r}"
        )
    if not np.isfinite(learning_rate):  # Keras takes NaN and inf and turns the parameters into them
        raise ValueError(f"{name}: 'learning_rate' must be finite, got {learning_rate}")
    return learning_rate  # 0 and negative rates as Keras (0 leaves the parameters as they are)


def _check_number(name: str, arg: str, value: Any) -> None:
    """A real number (a Python or NumPy int or float, not a bool): ``None`` once became NaN
    parameters (``float64(None)``) and a string such as ``"1e-7"`` was parsed into the
    constants; comparisons with either raised Python's bare TypeError."""
    if not is_real(value):
        raise TypeError(f"{name}: '{arg}' must be a real number, got {value!r}")


def _check_flag(name: str, arg: str, value: Any) -> None:
    """A bool: a string such as ``"False"`` is truthy and once turned the option on."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: '{arg}' must be a bool, got {value!r}")


#: The configuration that keeps each set of slots, named when a state reaches another one.
_SLOTS_OF: dict[frozenset[str], str] = {
    frozenset(): "sgd(momentum=0)",
    frozenset({"momentum"}): "sgd(momentum>0)",
    frozenset({"m", "v"}): "adam(amsgrad=False)",
    frozenset({"m", "v", "vhat"}): "adam(amsgrad=True)",
    frozenset({"v"}): "rmsprop(centered=False, momentum=0)",
    frozenset({"v", "mg"}): "rmsprop(centered=True, momentum=0)",
    frozenset({"v", "mom"}): "rmsprop(centered=False, momentum>0)",
    frozenset({"v", "mg", "mom"}): "rmsprop(centered=True, momentum>0)",
}


def _check_arrays(name: str, arg: str, what: str, arrays: Any) -> None:
    """A list or tuple of NumPy arrays: one bare array was once taken as a sequence of its rows
    (a list of rows came back), and ``None`` or nested lists failed with an AttributeError."""
    if not isinstance(arrays, list | tuple):
        got = (
            f"one array {arrays.dtype}{arrays.shape} (wrap it in a list)"
            if isinstance(arrays, np.ndarray)
            else type(arrays).__name__
        )
        raise TypeError(f"{name}: '{arg}' must be a list or tuple of arrays, got {got}")
    for k, a in enumerate(arrays):
        # np.matrix stays 2-D when flattened: the kernels' out= arrays failed to broadcast.
        if not isinstance(a, np.ndarray | np.generic) or isinstance(a, np.matrix):
            raise TypeError(f"{name}: {what} {k} must be a NumPy array, got {type(a).__name__}")


def _check_update(
    name: str,
    grads: Sequence[Any],
    state: OptState,
    params: Sequence[Any],
    slots: tuple[str, ...],
) -> None:
    """Floating-point gradients matching the parameters, and a state that this configuration's
    ``init`` made for them: exactly the slots ``slots``, each one array per parameter with its
    shape and dtype (else the kernels would read another configuration's slots, or none)."""
    _check_arrays(name, "params", "parameter", params)
    _check_arrays(name, "grads", "gradient", grads)
    if len(grads) != len(params):
        raise ValueError(f"{name}: {len(grads)} gradients for {len(params)} parameters")
    for k, (g, p) in enumerate(zip(grads, params, strict=True)):
        for what, a in (("parameter", p), ("gradient", g)):
            if a.dtype.kind != "f":  # SGD's learning rate would cast to 0 on integers
                raise TypeError(
                    f"{name}: {what} {k} must be floating-point, got {a.dtype}{a.shape} "
                    "(nnref does not cast silently)"
                )
        if g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(
                f"{name}: gradient {k} is {g.dtype}{g.shape}, parameter is {p.dtype}{p.shape}"
            )
    if not isinstance(state, OptState):
        raise TypeError(
            f"{name}: 'state' must be an OptState from init, got {type(state).__name__}"
        )
    it = state.iterations
    if not is_int(it) or it < 0:
        raise ValueError(f"{name}: the state's iterations must be an int >= 0, got {it!r}")
    if set(state.slots) != set(slots):
        raise ValueError(
            f"{name}: the state's slots {sorted(state.slots)} are not this configuration's "
            f"{sorted(slots)}: the state looks like one of "
            f"{_SLOTS_OF.get(frozenset(state.slots), 'no nnref optimizer')}, this optimizer is "
            f"{_SLOTS_OF[frozenset(slots)]}"
        )
    for s in slots:
        arrays = state.slots[s]
        if not isinstance(arrays, list | tuple):
            raise TypeError(
                f"{name}: slot '{s}' must be a list of arrays, one per parameter, "
                f"got {type(arrays).__name__}"
            )
        if len(arrays) != len(params):
            raise ValueError(
                f"{name}: slot '{s}' holds {len(arrays)} arrays for {len(params)} parameters"
            )
        for k, (a, p) in enumerate(zip(arrays, params, strict=True)):
            if not isinstance(a, np.ndarray) or a.shape != p.shape or a.dtype != p.dtype:
                got = f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(
                    f"{name}: slot '{s}' array {k} is {got}, parameter {k} is {p.dtype}{p.shape}"
                )


def _initializer(name: str, slots: tuple[str, ...]) -> Callable[[Sequence[np.ndarray]], OptState]:
    """``init`` for an optimizer whose state is ``slots``: each slot zeros, one array per
    parameter."""

    def init(params: Sequence[np.ndarray]) -> OptState:
        _check_arrays(name, "params", "parameter", params)
        return OptState(0, {s: [np.zeros_like(p) for p in params] for s in slots})

    return init


#: Fewest elements worth a thread. A hand-off costs tens of microseconds on an idle machine and
#: milliseconds on a busy one (a preempted worker can hold the GIL). The 784x512 model's 400 Ki
#: element update measured 0.48-0.55 ms on two threads against 0.73-0.76 ms on one standalone
#: (others using ~1.4 cores), but inside the composed 784-512-10 step (20-30 alternating 20-step
#: calls, idle machine) the step took 3.22-3.64 ms with the update on two threads against
#: 2.68-2.81 ms on one; not because of OpenBLAS' worker spinning after the gradient GEMM: with
#: OPENBLAS_THREAD_TIMEOUT=4 (no spin) it was 3.64-4.04 against 2.75-3.06 ms. So updates stay in
#: one thread below 1 Mi elements; at 1 Mi and 4 Mi (after a GEMM, others using ~1.1 cores) two
#: threads were faster (2.2 against 2.9 ms, 11.2 against 12.1 ms). (Measured on an AMD EPYC; on
#: an Intel Xeon, with the blocks below, two threads made both composed steps 6% slower.)
_MIN_CHUNK = 1 << 19

#: Bytes of each array per block: a parameter's range longer than two blocks is updated block by
#: block, so its ~8 arrays stay in the core's 2 MiB L2 cache across the kernel's ~12 passes. On an
#: Intel Xeon (2 MiB L2, shared L3 on a mesh), inside the composed steps (14 alternating 20-step
#: samples): 784-512-10 (a 401 Ki element kernel) 0.88 [0.87-0.90] of the unblocked step with
#: 64 Ki element blocks, 0.98 on two threads unblocked; 784-128-256-10 (100 Ki elements, not
#: split) unchanged, 1.015 when split. (On an AMD EPYC, 16-128 Ki blocks were no faster: the
#: ~1 us per ufunc call outweighed the cache there.)
_BLOCK_BYTES = 1 << 18

Kernel = Callable[..., None]


def _operands(arith: Arithmetic, values: tuple) -> tuple:
    """``values`` as ``arith.operand`` gives them (themselves unless emulated)."""
    return tuple(map(arith.operand, values)) if arith.emulated else values


def _split(kernel: Kernel, groups: list[tuple[np.ndarray, ...]], inputs: int) -> None:
    """Call ``kernel(arithmetic, *pieces)`` on matching pieces of the arrays of each group (one
    parameter's ``inputs`` input arrays, then its outputs, all of one shape), covering every
    element once, in flush-to-zero arithmetic (:mod:`nnref._subnormals`, as Keras' updates run
    in TF; the inputs as ``arithmetic.operand`` gives them).

    The elements of all groups form one range, split over the threads (and within a thread in
    blocks, ``_BLOCK_BYTES``); ``kernel`` may only do element-wise work, which makes the results
    independent of the split. A parameter updated in one piece reaches ``kernel`` in its own
    shape, a part of one as flat slices. One range (under ``2 * _MIN_CHUNK`` elements: every
    update of the benchmarks' MLPs) runs in the caller without the range bookkeeping. With the
    bookkeeping and every array flattened, the 784-128-256-10 MLP's update took 385 us, its
    kernels 301 of them; without, 354-368 us, and the composed step 1.63-1.65 ms against
    1.67-1.71 (three alternating processes, medians of 30 20-step samples).
    """
    sizes = [group[0].size for group in groups]
    total = sum(sizes)

    def whole(group: tuple[np.ndarray, ...]) -> bool:
        """Whether the group reaches ``kernel`` as it is: at most two blocks, and not 0-d (a
        ufunc of 0-d arrays returns a scalar, which is no ``out=``)."""
        block = max(1, _BLOCK_BYTES // group[0].itemsize)
        return group[0].size <= 2 * block and np.ndim(group[0]) > 0

    def pieces(group: tuple[np.ndarray, ...], a: int, b: int) -> Iterator[tuple]:
        """The group's elements ``a:b``: the group itself when it is :func:`whole` and all of
        it is asked for, else flat slices of at most a block (the rest of a range under two
        blocks in one slice)."""
        n = group[0].size
        if a == 0 and b == n and whole(group):
            yield group
            return
        block = max(1, _BLOCK_BYTES // group[0].itemsize)
        flat = [x.reshape(-1) for x in group]
        step = block if b - a > 2 * block else max(b - a, 1)
        for c in range(a, b, step):
            yield tuple(x[c : min(b, c + step)] for x in flat)

    def call(arith: Arithmetic, piece: tuple) -> None:
        kernel(arith, *_operands(arith, piece[:inputs]), *piece[inputs:])

    if total < 2 * _MIN_CHUNK:  # one range (parallel_for's choice too): the caller's thread
        with flush_subnormals() as arith:
            for group in groups:
                if not arith.emulated and whole(group):  # the common case, without a generator
                    kernel(arith, *group)
                    continue
                for piece in pieces(group, 0, group[0].size):
                    call(arith, piece)
        return
    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n)

    def run(lo: int, hi: int) -> None:
        with flush_subnormals() as arith:
            for k, group in enumerate(groups):
                a, b = max(lo, offsets[k]) - offsets[k], min(hi, offsets[k + 1]) - offsets[k]
                if a < b:
                    for piece in pieces(group, a, b):
                        call(arith, piece)

    parallel_for(run, total, min_chunk=_MIN_CHUNK)


def _apply(
    kernel: Kernel,
    grads: Sequence[np.ndarray],
    params: Sequence[np.ndarray],
    state: OptState,
    names: tuple[str, ...],
) -> tuple[Params, dict[str, list[np.ndarray]]]:
    """Run ``kernel(arithmetic, g, p, *old slots, new p, *new slots)`` (slots in ``names``'
    order, not the state's; ``arithmetic`` as :func:`_split` gives it) over every element of
    every parameter, the results written into fresh C-contiguous arrays; return the new
    parameters and slots. The arrays reach ``kernel`` as :func:`_split` cuts them: the inputs
    themselves or views of them (never written; flat copies of non-contiguous ones where a
    parameter is cut), then the fresh outputs or views of them."""
    new = [[np.empty(p.shape, p.dtype) for _ in range(1 + len(names))] for p in params]
    groups = [
        (g, p, *(state.slots[s][k] for s in names), *new[k])
        for k, (g, p) in enumerate(zip(grads, params, strict=True))
    ]
    _split(kernel, groups, 2 + len(names))
    return [n[0] for n in new], {s: [n[1 + i] for n in new] for i, s in enumerate(names)}


def sgd(learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> Optimizer:
    """``keras.optimizers.SGD``.

    Notes
    -----
    ``x -= lr g`` without momentum; otherwise ``m = mu m - lr g`` and ``x += m`` (Nesterov:
    ``x += mu m - lr g`` with the updated ``m``).
    """
    lr = _check_lr("sgd", learning_rate)
    _check_number("sgd", "momentum", momentum)
    _check_flag("sgd", "nesterov", nesterov)
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"sgd: 'momentum' must be in [0, 1], got {momentum}")

    slots = ("momentum",) if momentum else ()

    init = _initializer("sgd", slots)

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[Params, OptState]:
        _check_update("sgd", grads, state, params, slots)
        const = {dt: (_f32(lr, dt), _f32(momentum, dt)) for dt in {p.dtype for p in params}}

        def kernel(arith: Arithmetic, g: np.ndarray, p: np.ndarray, *rest: np.ndarray) -> None:
            a, mu = _operands(arith, const[p.dtype])
            r = arith.result
            if not momentum:  # p - g a
                (out,) = rest
                r(np.multiply(g, a, out=out))
                r(np.subtract(p, out, out=out))
                return
            m0, out, m = rest
            ga = r(np.multiply(g, a))  # scratch, used twice by Nesterov
            r(np.multiply(m0, mu, out=m))  # m = m0 mu - g a
            r(np.subtract(m, ga, out=m))
            if nesterov:  # p + (m mu - g a)
                r(np.multiply(m, mu, out=out))
                r(np.subtract(out, ga, out=out))
                r(np.add(p, out, out=out))
            else:
                r(np.add(p, m, out=out))

        new_p, new_slots = _apply(kernel, grads, params, state, slots)
        return new_p, OptState(state.iterations + 1, new_slots)

    return Optimizer(
        "sgd", {"learning_rate": lr, "momentum": momentum, "nesterov": nesterov}, init, update
    )


def adam(
    learning_rate: float = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
) -> Optimizer:
    """``keras.optimizers.Adam`` (the "epsilon-hat" form).

    Notes
    -----
    With ``t = iterations + 1``: ``alpha = lr sqrt(1 - b2^t) / (1 - b1^t)``,
    ``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``, ``x -= m alpha / (sqrt(v) + eps)``
    (AMSGrad: ``v`` replaced by its running maximum). This differs from the textbook
    ``lr m_hat / (sqrt(v_hat) + eps)`` when ``eps`` is not negligible.
    """
    lr = _check_lr("adam", learning_rate)
    _check_number("adam", "epsilon", epsilon)
    _check_flag("adam", "amsgrad", amsgrad)
    for name, b in (("beta_1", beta_1), ("beta_2", beta_2)):
        _check_number("adam", name, b)
        if not 0.0 <= b < 1.0:
            raise ValueError(f"adam: '{name}' must be in [0, 1), got {b}")

    slots = ("m", "v", "vhat") if amsgrad else ("m", "v")

    init = _initializer("adam", slots)

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[Params, OptState]:
        _check_update("adam", grads, state, params, slots)
        t = state.iterations + 1
        const = {}  # per dtype: the scalars in the parameters' precision
        with flush_subnormals() as arith:  # as Keras computes them (beta^t underflows)
            r = arith.result
            for dt in {p.dtype for p in params}:
                one = dt.type(1)
                b1p = r(_f32(beta_1, dt) ** dt.type(t))
                b2p = r(_f32(beta_2, dt) ** dt.type(t))
                alpha = r(r(_f32(lr, dt) * np.sqrt(one - b2p)) / (one - b1p))
                const[dt] = (dt.type(1 - beta_1), dt.type(1 - beta_2), dt.type(epsilon), alpha)

        def kernel(arith: Arithmetic, g: np.ndarray, p: np.ndarray, *rest: np.ndarray) -> None:
            c1, c2, eps, alpha = _operands(arith, const[p.dtype])
            r = arith.result
            if amsgrad:  # slots m, v (, vhat)
                m0, v0, vhat0, out, m, v, vhat = rest
            else:
                m0, v0, out, m, v = rest
            # Keras' operation order: m0 + (g - m0) (1 - b1), v0 + (g^2 - v0) (1 - b2),
            # p - m alpha / (sqrt(v) + eps).
            r(np.subtract(g, m0, out=m))
            r(np.multiply(m, c1, out=m))
            r(np.add(m, m0, out=m))
            r(np.multiply(g, g, out=v))
            r(np.subtract(v, v0, out=v))
            r(np.multiply(v, c2, out=v))
            r(np.add(v, v0, out=v))
            used = v
            if amsgrad:
                used = np.maximum(vhat0, v, out=vhat)
            den = r(np.sqrt(used))  # scratch
            r(np.add(den, eps, out=den))
            r(np.multiply(m, alpha, out=out))
            r(np.divide(out, den, out=out))
            r(np.subtract(p, out, out=out))

        new_p, new_slots = _apply(kernel, grads, params, state, slots)
        return new_p, OptState(t, new_slots)

    cfg = {
        "learning_rate": lr,
        "beta_1": beta_1,
        "beta_2": beta_2,
        "epsilon": epsilon,
        "amsgrad": amsgrad,
    }
    return Optimizer("adam", cfg, init, update)


def rmsprop(
    learning_rate: float = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
) -> Optimizer:
    """``keras.optimizers.RMSprop`` (epsilon inside the square root, slots start at zero).

    Notes
    -----
    ``v = rho v + (1 - rho) g^2``; centered: ``mg = rho mg + (1 - rho) g`` and
    ``den = v - mg^2 + eps``, else ``den = v + eps``; ``inc = lr g / sqrt(den)``; with momentum
    ``mom = momentum mom + inc`` and ``x -= mom``, else ``x -= inc``. (The legacy
    ``tf.compat.v1.train.RMSPropOptimizer`` starts ``v`` at ones and uses eps 1e-10.)
    """
    lr = _check_lr("rmsprop", learning_rate)
    for name, value in (("rho", rho), ("momentum", momentum), ("epsilon", epsilon)):
        _check_number("rmsprop", name, value)
    _check_flag("rmsprop", "centered", centered)

    slots = ("v", *(("mg",) if centered else ()), *(("mom",) if momentum > 0 else ()))

    init = _initializer("rmsprop", slots)

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[Params, OptState]:
        _check_update("rmsprop", grads, state, params, slots)
        const = {
            dt: (dt.type(rho), dt.type(1 - rho), dt.type(epsilon), _f32(lr, dt), dt.type(momentum))
            for dt in {p.dtype for p in params}
        }

        def kernel(arith: Arithmetic, g: np.ndarray, p: np.ndarray, *rest: np.ndarray) -> None:
            rh, one_minus_rh, eps, a, mu = _operands(arith, const[p.dtype])
            r = arith.result
            n = len(slots)  # v (, mg) (, mom): the kernel's arguments after g, p
            old = dict(zip(slots, rest[:n], strict=True))
            out, slot = rest[n], dict(zip(slots, rest[n + 1 :], strict=True))
            v = r(np.multiply(old["v"], rh, out=slot["v"]))  # rho v + (1 - rho) g^2
            den = r(np.multiply(g, g))  # scratch
            r(np.multiply(den, one_minus_rh, out=den))
            r(np.add(v, den, out=v))
            if centered:  # den = v - mg^2 + eps, mg = rho mg + (1 - rho) g
                mg = r(np.multiply(old["mg"], rh, out=slot["mg"]))
                r(np.multiply(g, one_minus_rh, out=den))
                r(np.add(mg, den, out=mg))
                r(np.multiply(mg, mg, out=den))
                r(np.subtract(v, den, out=den))
                r(np.add(den, eps, out=den))
            else:
                r(np.add(v, eps, out=den))
            r(np.sqrt(den, out=den))
            inc = r(np.multiply(g, a, out=out))  # inc = lr g / sqrt(den)
            r(np.divide(inc, den, out=inc))
            if momentum > 0:  # p - (momentum mom + inc)
                mom = r(np.multiply(old["mom"], mu, out=slot["mom"]))
                r(np.add(mom, inc, out=mom))
                r(np.subtract(p, mom, out=out))
            else:
                r(np.subtract(p, inc, out=out))

        new_p, new_slots = _apply(kernel, grads, params, state, slots)
        return new_p, OptState(state.iterations + 1, new_slots)

    cfg = {
        "learning_rate": lr,
        "rho": rho,
        "momentum": momentum,
        "epsilon": epsilon,
        "centered": centered,
    }
    return Optimizer("rmsprop", cfg, init, update)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {"sgd": sgd, "adam": adam, "rmsprop": rmsprop}
