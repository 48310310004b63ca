"""Where TF (and nnref), JAX and PyTorch disagree on nnref's ops: the measured matrix, as data.

Each :class:`Pin` names one semantic choice of one op, says what TF does (nnref follows TF),
and what JAX (``jax`` / ``jax.nn`` / optax) and PyTorch (``torch`` / ``torch.nn.functional`` /
``torch.optim``) do, each with whether it agrees with TF and the version it was measured on.
Every entry is backed by a test in ``tests/test_framework_semantics.py`` that shows both
behaviours and checks the ``agrees`` flag recorded here, so the table cannot drift from the
installed frameworks silently. The conventions behind the conformance profiles
(``nnref conform --profile jax|torch``) name the pins that show them, and the README matrix
(:func:`render_matrix`, ``python -m nnref.oracles.semantics --markdown``) joins :data:`PINS`
with what ``nnref conform jax|torch --profile tf`` shows on each pin's cases.

Why the max-pool pins come out as they do (read in the frameworks' sources):

- PyTorch's CPU kernel (``aten/src/ATen/native/cpu/MaxPoolKernel.cpp``) scans a window in
  row-major order from ``maxval = -inf`` and the window's first valid index, replacing when
  ``val > maxval || isnan(val)``: strict ``>`` keeps the first of tied maxima, every NaN
  replaces (so the last NaN wins), an all ``-inf`` window keeps its first valid element, and
  its own ``padding=`` is never visited.
- JAX differentiates ``reduce_window(max)`` through ``_select_and_gather_add`` with
  ``select_prim = ge`` (``jax/_src/lax/windowed_reductions.py``): an element is kept against
  the next one while ``kept >= next``. A NaN compares false both ways, so it takes the place
  and the next element takes it back; padding cells take part with the ``-inf`` identity, so a
  window that starts with padding and holds only ``-inf`` keeps the padding. Which tied
  element wins is the order in which XLA visits the window (row-major, measured).

NumPy-free and framework-free: importing this module imports nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: The versions the table was measured on (CPU builds).
MEASURED_ON: dict[str, str] = {
    "tf": "tensorflow 2.21.0, keras 3.15.1",
    "jax": "jax 0.10.2, optax 0.2.8",
    "torch": "torch 2.13.0+cpu",
}

FRAMEWORKS: tuple[str, str] = ("jax", "torch")


@dataclass(frozen=True)
class Behaviour:
    """What one framework does on one pin.

    Attributes
    ----------
    agrees : bool
        Same result as TF (values and gradients) on the pin's inputs.
    what : str
        What the framework does, in a sentence, with the API it was measured through.
    """

    agrees: bool
    what: str


@dataclass(frozen=True)
class Pin:
    """One semantic pin: ``id`` (stable, used by profiles), ``op`` (nnref's name or the
    optimizer/initializer), what ``tf`` does, and the ``jax`` and ``torch`` behaviours;
    ``cases`` (``"op/case"`` of :data:`nnref.cases.TABLES`) are where ``nnref conform jax|torch``
    meets it (none: no nnref op has it)."""

    id: str
    op: str
    tf: str
    jax: Behaviour
    torch: Behaviour
    cases: tuple[str, ...] = ()

    def behaviour(self, framework: str) -> Behaviour:
        """The :class:`Behaviour` of ``"jax"`` or ``"torch"``."""
        if framework not in FRAMEWORKS:
            raise ValueError(f"semantics: unknown framework {framework!r}; known: {FRAMEWORKS}")
        return self.jax if framework == "jax" else self.torch


PINS: tuple[Pin, ...] = (
    Pin(
        "conv-same-odd-total",
        "conv2d",
        "SAME puts the odd extra pad after (bottom/right): 4x4 input, 2x2 kernel, stride 1 pads "
        "(0, 1)",
        Behaviour(True, "lax.conv_general_dilated(padding='SAME') pads (0, 1) as TF"),
        Behaviour(
            True,
            "F.conv2d(padding='same') at stride 1 pads (0, 1) as TF (with a UserWarning that "
            "it copies the input for the uneven pad)",
        ),
        (
            "conv2d/same-pad-odd-total-h",
            "conv2d/same-pad-odd-total-w",
        ),
    ),
    Pin(
        "conv-same-strided",
        "conv2d",
        "SAME at any stride: 8x8 input, 3x3 kernel, stride 2 gives 4x4 with pads (0, 1)",
        Behaviour(True, "padding='SAME' at stride 2 pads (0, 1) as TF"),
        Behaviour(
            False,
            "F.conv2d(padding='same') raises RuntimeError for strided convolutions "
            "('padding=\\'same\\' is not supported for strided convolutions')",
        ),
        (
            "conv2d/same-stride-2-even-n",
            "conv2d/same-stride-3",
            "conv2d/same-strides-2x1",
        ),
    ),
    Pin(
        "conv-same-strided-symmetric-port",
        "conv2d",
        "SAME, 3x3 kernel, stride 2, even input (8x8): pads (0, 1), windows start at rows "
        "0, 2, 4, 6",
        Behaviour(
            True,
            "no port needed: padding='SAME' is TF's; a symmetric ((1, 1), (1, 1)) port would "
            "shift the windows as PyTorch's",
        ),
        Behaviour(
            False,
            "the usual port padding=1 gives TF's 4x4 shape with every window one row and one "
            "column up-left (pads (1, 1)): different values",
        ),
        ("conv2d/same-stride-2-even-n",),
    ),
    Pin(
        "pool-tie-first-max",
        "max_pool2d",
        "the gradient of a tied window goes to its first maximum in row-major order",
        Behaviour(
            True,
            "reduce_window(max)'s VJP (XLA select-and-scatter with >=) keeps the first maximum",
        ),
        Behaviour(True, "F.max_pool2d's CPU kernel (strict >) keeps the first maximum"),
        (
            "max_pool2d/ties-first-max-gets-gradient",
            "max_pool2d/ties-overlapping-windows",
        ),
    ),
    Pin(
        "pool-nan",
        "max_pool2d",
        "NaN is skipped in the forward pass ([[1, nan], [2, 0]] gives 2); the gradient goes to "
        "the first element unless a later one is strictly greater (so to a leading NaN)",
        Behaviour(
            False,
            "the forward value is NaN (lax.max propagates it); the gradient goes to the first "
            "maximum of the elements after the last NaN in row-major order ([[3, nan], [1, 0]] "
            "routes to the 1), or to that NaN when it is last",
        ),
        Behaviour(
            False,
            "NaN wins: the forward value is NaN and the gradient goes to the last NaN of the "
            "window",
        ),
        ("max_pool2d/nan-windows",),
    ),
    Pin(
        "pool-all-neg-inf",
        "max_pool2d",
        "a window of only -inf gives the dtype's lowest finite value; the gradient goes to its "
        "first valid element, never to padding",
        Behaviour(
            False,
            "the forward value is -inf; in a SAME window that starts with padding the "
            "gradient goes to the padding and is lost",
        ),
        Behaviour(
            False,
            "the forward value is -inf; the gradient goes to the first valid element as TF "
            "(F.max_pool2d's own padding is skipped by index)",
        ),
        ("max_pool2d/inf-windows",),
    ),
    Pin(
        "pool-same-port",
        "max_pool2d",
        "SAME pooling: ceil(n / s) outputs, total // 2 of the pad before and the rest after (5x7 "
        "input, 2x2 window, stride 2: 3x4 with pads (0, 1) on both axes)",
        Behaviour(True, "reduce_window(padding='SAME') pads as TF: 3x4"),
        Behaviour(
            False,
            "F.max_pool2d has no 'same' and pads symmetrically (at most half the window); the "
            "usual port padding=(k - 1) // 2 (nn.MaxPool2d(2) for 2x2, MaxPool2d(3, 2, padding=1) "
            "for 3x3) gives floor((n + 2p - k) / s) + 1 outputs: 2x3 on that input",
        ),
        (
            "max_pool2d/2x2-stride-2-same-odd-input",
            "max_pool2d/2x3-window-strides-1x2",
        ),
    ),
    Pin(
        "reduce-max-ties",
        "reduce_max",
        "tf.reduce_max splits the gradient equally among tied maxima",
        Behaviour(True, "jnp.max splits the gradient equally as TF"),
        Behaviour(
            False,
            "torch.amax and torch.max(x) split equally as TF, but torch.max(x, dim).values "
            "sends the whole gradient to the returned index",
        ),
    ),
    Pin(
        "argmax-ties",
        "argmax",
        "tf.argmax returns the first of tied maxima",
        Behaviour(True, "jnp.argmax returns the first"),
        Behaviour(True, "torch.argmax returns the first"),
        ("argmax/ties-first-index",),
    ),
    Pin(
        "argmax-nan",
        "argmax",
        "tf.argmax skips NaN: argmax([0.1, nan, 0.5]) is 2",
        Behaviour(False, "jnp.argmax treats NaN as the maximum: 1"),
        Behaviour(False, "torch.argmax treats NaN as the maximum: 1"),
        (
            "argmax/nan-skipped",
            "accuracy/ties-and-nan",
        ),
    ),
    Pin(
        "relu-grad-at-0-and-nan",
        "relu",
        "relu'(0) = relu'(-0) = 0 and relu'(NaN) = 0",
        Behaviour(True, "jax.nn.relu: 0 at 0, -0 and NaN"),
        Behaviour(False, "F.relu: 0 at 0 and -0, but 1 at NaN"),
        (
            "relu/gradient-at-0-is-0",
            "relu/nan-input-gradient-0",
        ),
    ),
    Pin(
        "bad-labels",
        "sparse_softmax_cross_entropy_with_logits",
        "labels outside [0, K) raise on CPU (InvalidArgumentError; nnref: ValueError)",
        Behaviour(
            False,
            "optax.softmax_cross_entropy_with_integer_labels does not check: label -1 wraps to "
            "class K-1 (a finite, wrong loss), label K gives NaN with a finite gradient",
        ),
        Behaviour(
            False,
            "F.cross_entropy ignores label -100 by default (loss 0, left out of the mean); other "
            "out-of-range labels raise IndexError",
        ),
        (
            "sparse_softmax_cross_entropy_with_logits/label-out-of-range-raises",
            "sparse_softmax_cross_entropy_with_logits/label-negative-raises",
            "sparse_softmax_cross_entropy_with_logits/label-minus-100-raises",
        ),
    ),
    Pin(
        "xent-shift",
        "sparse_softmax_cross_entropy_with_logits",
        "the loss in the shifted form log(sum exp(z - m)) - (z_y - m): logits [1e4, 1e4, -1e4] "
        "with label 0 give ln 2 exactly (0.6931472 in float32)",
        Behaviour(
            False,
            "optax.softmax_cross_entropy_with_integer_labels recombines (m + log sum exp(z - m)) "
            "- z_y: 0.69335938 in float32, 2.5e-13 off in float64 (optax.softmax_cross_entropy "
            "with one-hot labels is exact)",
        ),
        Behaviour(True, "F.cross_entropy gives ln 2 exactly in both dtypes"),
        (
            "sparse_softmax_cross_entropy_with_logits/ln2-rows-shifted",
            "sparse_softmax_cross_entropy_with_logits/huge-logits-shifted",
        ),
    ),
    Pin(
        "one-hot-out-of-range",
        "one_hot",
        "tf.one_hot gives a row of zeros for out-of-range and negative indices",
        Behaviour(True, "jax.nn.one_hot gives rows of zeros as TF"),
        Behaviour(False, "F.one_hot raises RuntimeError for negative or too large indices"),
        (
            "one_hot/out-of-range-rows-zero",
            "one_hot/negative-rows-zero",
            "one_hot/axis-0-on-off-values",
        ),
    ),
    Pin(
        "soft-label-dlogits",
        "softmax_cross_entropy_with_logits",
        "dlogits is softmax(z) - p even when rows of p do not sum to 1",
        Behaviour(
            False,
            "optax.softmax_cross_entropy's VJP is the true derivative softmax(z) * sum(p) - p",
        ),
        Behaviour(
            False,
            "F.cross_entropy with probability targets: the true derivative softmax(z) * sum(p) - p",
        ),
        ("softmax_cross_entropy_with_logits/soft-labels-rows-not-1",),
    ),
    Pin(
        "label-smoothing",
        "categorical_crossentropy",
        "Keras CCE smooths y to y (1 - ls) + ls / K (Keras SCCE has no label_smoothing)",
        Behaviour(True, "optax.smooth_labels is the same rule"),
        Behaviour(
            True,
            "F.cross_entropy(label_smoothing=ls) gives the same loss and dlogits (and also "
            "accepts it with integer labels)",
        ),
        (
            "categorical_crossentropy/logits-smoothing-0.1",
            "categorical_crossentropy/probs-smoothing-0.3-weighted",
        ),
    ),
    Pin(
        "prob-clip",
        "categorical_crossentropy",
        "Keras' probability losses clip to [1e-7, 1 - 1e-7]: p_y = 0 costs -log(1e-7) = "
        "16.118; CCE renormalises rows first, SCCE does not",
        Behaviour(
            False,
            "no probability-input cross-entropy in JAX/optax; the direct port -log(p_y) is inf",
        ),
        Behaviour(
            False,
            "no probability-input cross-entropy; the port F.nll_loss(log p) is inf at p_y = 0 "
            "(F.binary_cross_entropy clamps log at -100 instead)",
        ),
        (
            "categorical_crossentropy/probs-clipped-at-1e-7",
            "sparse_categorical_crossentropy/probs-clipped-at-1e-7",
        ),
    ),
    Pin(
        "weighted-mean",
        "sparse_categorical_crossentropy",
        "sum_over_batch_size with sample weights is sum(w l) / N (zero weights count in N)",
        Behaviour(True, "optax returns per-sample losses; jnp.mean(w * l) is Keras' sum(w l) / N"),
        Behaviour(
            False,
            "F.cross_entropy(weight=class_w, reduction='mean') divides by sum(w[y]), not N",
        ),
        ("categorical_crossentropy/probs-smoothing-0.3-weighted",),
    ),
    Pin(
        "adam-epsilon",
        "adam",
        "Keras adds epsilon to sqrt(v) of the uncorrected v (epsilon-hat form): "
        "x -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)",
        Behaviour(False, "optax.adam adds eps to sqrt(v_hat): lr m_hat / (sqrt(v_hat) + eps)"),
        Behaviour(
            False, "torch.optim.Adam adds eps to sqrt(v_hat): lr m_hat / (sqrt(v_hat) + eps)"
        ),
        (
            "adam/epsilon-0.1",
            "adam/amsgrad",
        ),
    ),
    Pin(
        "adam-defaults",
        "adam",
        "keras.optimizers.Adam: lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7",
        Behaviour(False, "optax.adam: lr required, b1 0.9, b2 0.999, eps 1e-8"),
        Behaviour(False, "torch.optim.Adam: lr 1e-3, betas (0.9, 0.999), eps 1e-8"),
        ("adam/defaults",),
    ),
    Pin(
        "rmsprop-epsilon",
        "rmsprop",
        "Keras adds epsilon inside the square root: x -= lr g / sqrt(v + eps)",
        Behaviour(True, "optax.rmsprop (eps_in_sqrt=True by default) as Keras"),
        Behaviour(False, "torch.optim.RMSprop adds eps outside: lr g / (sqrt(v) + eps)"),
        (
            "rmsprop/epsilon-0.1",
            "rmsprop/centered-momentum",
        ),
    ),
    Pin(
        "rmsprop-defaults",
        "rmsprop",
        "keras.optimizers.RMSprop: lr 1e-3, rho 0.9, epsilon 1e-7",
        Behaviour(False, "optax.rmsprop: lr required, decay 0.9, eps 1e-8"),
        Behaviour(False, "torch.optim.RMSprop: lr 1e-2, alpha 0.99, eps 1e-8"),
        ("rmsprop/defaults",),
    ),
    Pin(
        "lr-float32",
        "sgd/adam/rmsprop",
        "Keras keeps the learning rate as a float32 variable: on float64 parameters lr 0.1 acts "
        "as 0.10000000149011612 (SGD's momentum and Adam's betas pass through float32 too)",
        Behaviour(False, "optax uses the Python float: optax.sgd(0.1) steps by 0.1 g in float64"),
        Behaviour(
            False, "torch.optim uses the Python float: SGD(lr=0.1) steps by 0.1 g in float64"
        ),
        (
            "sgd/plain-lr-0.1",
            "sgd/momentum-0.9",
            "sgd/nesterov",
            "sgd/lr-float32-rounded",
        ),
    ),
    Pin(
        "default-initializers",
        "dense/conv2d init",
        "Keras Dense/Conv2D: kernel glorot_uniform U(+-sqrt(6 / (fan_in + fan_out))) with the "
        "receptive field in both fans, bias zeros",
        Behaviour(
            True,
            "JAX has no layers; jax.nn.initializers.glorot_uniform has Keras' bounds and fans "
            "(Flax's layer defaults not measured)",
        ),
        Behaviour(
            False,
            "nn.Linear/nn.Conv2d: kernel and bias U(+-1/sqrt(fan_in)) (kaiming_uniform, "
            "a=sqrt(5)), fan_in = C_in * KH * KW",
        ),
    ),
)

#: The pins by id.
BY_ID: dict[str, Pin] = {p.id: p for p in PINS}


def differences(framework: str) -> list[Pin]:
    """The pins on which ``framework`` (``"jax"`` or ``"torch"``) does not agree with TF."""
    return [p for p in PINS if not p.behaviour(framework).agrees]


def rows() -> list[dict[str, str]]:
    """One flat dict per pin (``id, op, tf, jax, torch``; a framework's cell starts with
    ``agrees:`` or ``differs:``), for the README matrix and ``--json`` reports."""
    out = []
    for p in PINS:
        row = {"id": p.id, "op": p.op, "tf": p.tf}
        for fw in FRAMEWORKS:
            b = p.behaviour(fw)
            row[fw] = f"{'agrees' if b.agrees else 'differs'}: {b.what}"
        out.append(row)
    return out


# --------------------------------------------------------------------------- conform evidence


@dataclass(frozen=True)
class Conformance:
    """What ``nnref conform FRAMEWORK --profile tf`` shows on one pin's cases.

    Attributes
    ----------
    checks : int
        Rows run on the pin's cases (signature, forward, VJP, raises, trajectory; both dtypes).
    failed : tuple of str
        Row ids that fail and match a convention the framework follows for this pin.
    conventions : tuple of str
        Those conventions' ids (:data:`nnref.cases.conventions.CONVENTIONS`).
    unexplained : tuple of str
        Failing rows that match no convention the framework follows (none when the profiles
        model the framework).
    not_provided : tuple of str
        Ops of the pin's cases the framework's target does not provide.
    """

    checks: int
    failed: tuple[str, ...]
    conventions: tuple[str, ...]
    unexplained: tuple[str, ...]
    not_provided: tuple[str, ...]

    @property
    def agrees(self) -> bool | None:
        """True / False from the rows; None when no row ran (nothing provided)."""
        return None if not self.checks else not self.failed


#: Checks that decide no convention: the target against its own derivative, and Hypothesis draws.
_NOT_RUN = ("vjp-fd", "property")


def conformance(framework: str, report: Any = None) -> dict[str, Conformance]:
    """Sort what ``nnref conform FRAMEWORK --profile tf`` shows on the cases every pin lists
    by pin: a failing row counts against a pin when it matches a convention that
    ``framework`` follows and that names the pin in its ``semantics``.

    Parameters
    ----------
    framework : "jax" or "torch"
    report : ConformanceReport, optional
        A ``tf``-profile run of the framework's target to read (its ``vjp-fd`` and
        ``property`` rows are ignored); None runs the pins' cases now, without those checks.
        Imports the framework.
    """
    from nnref.cases.conventions import CONVENTIONS
    from nnref.conform import plan

    if framework not in FRAMEWORKS:
        raise ValueError(f"semantics: unknown framework {framework!r}; known: {FRAMEWORKS}")
    linked = {c for p in PINS for c in p.cases}
    if report is None:
        ops = sorted({c.split("/")[0] for c in linked})
        _, tasks, missing = plan(framework, ops=ops, profile="tf", examples=0)
        rows = [t.run() for t in tasks if f"{t.op}/{t.case}" in linked and t.check not in _NOT_RUN]
    else:
        if report.profile != "tf":
            raise ValueError(f"semantics: a tf-profile report is needed, got {report.profile!r}")
        missing = report.not_provided
        rows = [r for r in report.rows if f"{r.op}/{r.case}" in linked and r.check not in _NOT_RUN]
    by_says = {c.says: c for c in CONVENTIONS}
    out = {}
    for p in PINS:
        mine = [r for r in rows if f"{r.op}/{r.case}" in p.cases]
        failed, conventions, unexplained = [], [], []
        for r in mine:
            if r.ok or r.status != "fail":  # "not compared": follows from a failure counted
                continue
            followed = [
                by_says[m]
                for m in r.matches
                if m in by_says and framework in by_says[m].followed_by
            ]
            if not followed:
                unexplained.append(r.id)
            for c in followed:
                if p.id in c.semantics:
                    failed.append(r.id)
                    conventions.append(c.id)
        out[p.id] = Conformance(
            len(mine),
            tuple(dict.fromkeys(failed)),
            tuple(dict.fromkeys(conventions)),
            tuple(unexplained),
            tuple(sorted({c.split("/")[0] for c in p.cases} & set(missing))),
        )
    return out


def _cell(p: Pin, framework: str, found: Conformance) -> str:
    b = p.behaviour(framework)
    agrees = b.agrees if found.agrees is None else found.agrees
    text = f"**{'agrees' if agrees else 'differs'}**: {b.what}"
    if found.checks:
        if found.failed:
            names = ", ".join(f"`{c}`" for c in found.conventions)
            text += f" [conform: {len(found.failed)} of {found.checks} checks fail, match {names}]"
        else:
            text += f" [conform: {found.checks} checks pass]"
    elif found.not_provided:
        ops = ", ".join(f"`{op}`" for op in found.not_provided)
        text += f" [conform: {ops} not provided]"
    else:
        text += " [no nnref op: tests/test_framework_semantics.py]"
    return text.replace("|", "\\|")


def matrix_data(reports: dict[str, Any] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{framework: {pin id: Conformance fields}}``: what ``nnref conform jax|torch --profile
    tf`` shows on each pin's cases (:func:`conformance`), JSON-ready. Imports JAX and PyTorch.
    ``reports``: ``tf``-profile runs of the frameworks' targets to read instead of running."""
    return {
        fw: {pin: asdict(c) for pin, c in conformance(fw, (reports or {}).get(fw)).items()}
        for fw in FRAMEWORKS
    }


def render_matrix(data: dict[str, dict[str, dict[str, Any]]] | None = None) -> str:
    """The README's cross-framework matrix, as Markdown: one row per pin (op, pin, what TF
    does, JAX, PyTorch), each framework's cell the measured behaviour (:data:`PINS`) with the
    evidence of ``nnref conform jax|torch --profile tf`` on the pin's cases (:func:`matrix_data`,
    computed now when ``data`` is None): how many checks ran, which fail, and the conventions
    they match. Deterministic for given framework versions (seeded cases, no timings).
    """
    data = matrix_data() if data is None else data
    found = {
        fw: {pin: Conformance(**{k: _tuple(v) for k, v in c.items()}) for pin, c in d.items()}
        for fw, d in data.items()
    }
    lines = [
        f"Measured on {MEASURED_ON['jax']}, {MEASURED_ON['torch']}: each cell is what "
        "`tests/test_framework_semantics.py` shows, with what `nnref conform jax|torch "
        "--profile tf` shows on the pin's cases (checks in float64 and float32; a failing "
        "check counts when it matches a convention of `nnref/cases/conventions.py` that the "
        "framework follows).",
        "",
        "| op | pin | TF (nnref) | JAX | PyTorch |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in PINS:
        cells = [f"`{p.op}`", f"`{p.id}`", p.tf.replace("|", "\\|")]
        cells += [_cell(p, fw, found[fw][p.id]) for fw in FRAMEWORKS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def main(argv: list[str] | None = None) -> int:
    """``python -m nnref.oracles.semantics --markdown | --json``: the README matrix, or the
    measurements it is rendered from (``benchmarks/readme_figures.py`` block ``matrix``)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m nnref.oracles.semantics",
        description="The TF / JAX / PyTorch semantics matrix, measured by nnref conform.",
    )
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--markdown", action="store_true", help="print the README matrix")
    g.add_argument("--json", action="store_true", help="print what the matrix is rendered from")
    args = parser.parse_args(argv)
    print(json.dumps(matrix_data(), indent=1) if args.json else render_matrix())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
