"""The training loop: deterministic, resumable, bit-identical for a given seed.

Batches are a pure function of ``(seed, step)`` (each epoch's permutation comes from its own
``SeedSequence``), so a run resumed from a checkpoint continues exactly where it stopped.
Checkpoints hold the parameters, the optimizer state, the step and the metrics so far, in one
``.npz`` written atomically (temporary file, then ``os.replace``), loaded without pickle.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property, partial
from pathlib import Path
from typing import IO, Any

import numpy as np

from nnref._signals import STOP_SIGNALS, handled, stopped_by
from nnref._validate import is_int
from nnref.data.batching import kfold_batches, kfold_sizes
from nnref.data.datasets import Dataset, NpzArchive, load_dataset, open_npz
from nnref.ops.conv import ALGORITHMS
from nnref.optim import OPTIMIZERS, Optimizer, OptState
from nnref.train import model as m
from nnref.train.recipes import RECIPES, Recipe

CHECKPOINT = "checkpoint.npz"
FORMAT_VERSION = 1
#: Every file ``train(..., out=...)`` writes (the pictures only with matplotlib installed).
OUTPUT_FILES = ("metrics.csv", "metrics.json", "curves.png", "predictions.png", CHECKPOINT)
DATASETS = ("digits", "mnist", "toy")
#: Held-out samples evaluated at every log step: the first ``HELDOUT_MAX`` of the test set (all
#: of digits' 360; 1000 of MNIST's 10 000, which bounds the cost of a log line to about eight
#: forward passes of a 128-image batch). The final test accuracy always uses the whole set.
HELDOUT_MAX = 1000
#: The ``nnref train`` flag behind each option, for messages.
FLAGS = {
    "recipe": "RECIPE",
    "dataset": "--dataset",
    "steps": "--steps",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "optimizer": "--optimizer",
    "learning_rate": "--lr",
    "seed": "--seed",
    "dtype": "--dtype",
    "data_dir": "--data-dir",
    "display_step": "--log-every",
    "out": "--out",
    "resume": "--resume",
    "conv_algorithm": "conv algorithm (--fast)",
}


class ConfigError(ValueError):
    """An invalid training option: ``field`` (a :class:`RunConfig` field, or ``epochs``,
    ``out``, ``resume``), the offending ``value`` and the ``reason``.

    ``str(e)`` names the field; :meth:`cli_message` names the ``nnref train`` flag instead.
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(
            f"{field} {value!r}: {reason}" if value is not None else f"{field}: {reason}"
        )

    @property
    def flag(self) -> str:
        return FLAGS.get(self.field, self.field)

    def cli_message(self) -> str:
        """One line naming the flag and the value, e.g. ``--lr nan: must be ...``; a value
        longer than 240 characters (an ordinary path is shown whole; a 300-character name is
        what the OS refuses) is shortened to its ends and its length."""
        if self.value is None or isinstance(self.value, bool):
            return f"{self.flag}: {self.reason}"
        value = str(self.value)
        if len(value) > 240:
            value = f"{value[:80]}...{value[-60:]} ({len(value)} characters)"
        return f"{self.flag} {value}: {self.reason}"


class TrainingDiverged(FloatingPointError):
    """The loss (or a parameter) became NaN or infinite at ``step``; ``checkpoint`` is the
    checkpoint left on disk (``None`` when none was written), at ``checkpoint_step``."""

    def __init__(
        self, message: str, step: int, checkpoint: Path | None, checkpoint_step: int | None
    ) -> None:
        super().__init__(message)
        self.step, self.checkpoint, self.checkpoint_step = step, checkpoint, checkpoint_step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP (``signum``) stopped the run after ``step``;
    ``checkpoint`` holds the state to resume from (``None`` without ``out``), at
    ``checkpoint_step``.
    ``complete``: that is the run's last step, and the signal came before the final evaluation
    and the outputs were all written (``resume`` finishes them)."""

    def __init__(
        self,
        step: int,
        checkpoint: Path | None,
        checkpoint_step: int | None,
        *,
        complete: bool = False,
        signum: int = signal.SIGINT,
    ) -> None:
        where = f"; {checkpoint} holds step {checkpoint_step}" if checkpoint is not None else ""
        todo = " (training is complete; resume to finish the outputs)" if complete else ""
        super().__init__(f"{stopped_by(signum)} after step {step}{where}{todo}")
        self.step, self.checkpoint, self.checkpoint_step = step, checkpoint, checkpoint_step
        self.complete = complete
        self.signum = signum


def _require_int(field: str, v: Any, lo: int) -> None:
    if not is_int(v) or v < lo:
        what = "a positive integer" if lo == 1 else f"an integer >= {lo}"
        raise ConfigError(field, v, f"must be {what}")


@dataclass(frozen=True)
class RunConfig:
    """One training run's options; every field is validated on construction
    (:class:`ConfigError` naming the field).

    ``batch_size`` is 0 for recipes that train on the full batch (``sigmoid-mse``).
    """

    recipe: str
    dataset: str
    steps: int
    batch_size: int
    optimizer: str
    learning_rate: float
    seed: int = 0
    dtype: str = "float32"
    data_dir: str | None = None
    display_step: int = 100
    #: ``conv2d``'s ``algorithm`` for conv layers: ``"auto"`` (``--fast``) takes the DFT path
    #: where it wins, which is not exact (see :func:`nnref.ops.conv2d_fwd`).
    conv_algorithm: str = "direct"

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError("recipe", self.recipe, f"unknown; choose one of {sorted(RECIPES)}")
        if self.dataset not in DATASETS:
            raise ConfigError("dataset", self.dataset, f"unknown; choose one of {list(DATASETS)}")
        _require_int("steps", self.steps, 1)
        if RECIPES[self.recipe].batching == "full":
            if self.batch_size != 0:
                raise ConfigError(
                    "batch_size",
                    self.batch_size,
                    f"does not apply: {self.recipe} trains on the full batch",
                )
        else:
            _require_int("batch_size", self.batch_size, 1)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                "optimizer", self.optimizer, f"unknown; choose one of {sorted(OPTIMIZERS)}"
            )
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, float) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError("learning_rate", lr, "must be a finite number > 0")
        with np.errstate(over="ignore", under="ignore"):
            lr32 = float(np.float32(lr))
        if not 0 < lr32 < math.inf:  # Keras (and nnref.optim) keep learning rates in float32
            raise ConfigError("learning_rate", lr, "rounds to 0 or inf in float32")
        _require_int("seed", self.seed, 0)
        if self.dtype not in ("float32", "float64"):
            raise ConfigError("dtype", self.dtype, "must be float32 or float64")
        if self.data_dir is not None:
            if not self.data_dir:
                raise ConfigError("data_dir", "''", "is empty; name a directory")
            if self.dataset != "mnist":
                raise ConfigError(
                    "data_dir",
                    self.data_dir,
                    f"applies to --dataset mnist only (this run uses {self.dataset})",
                )
            d = Path(self.data_dir)
            try:
                is_dir, exists = d.is_dir(), d.exists()
            except OSError as e:  # pathlib lets ENAMETOOLONG, EACCES and others through
                raise ConfigError(
                    "data_dir", self.data_dir, f"cannot be checked ({e.strerror or e})"
                ) from None
            if not is_dir:
                reason = "is not a directory" if exists else "does not exist"
                raise ConfigError("data_dir", self.data_dir, reason)
        _require_int("display_step", self.display_step, 1)
        if self.conv_algorithm not in ALGORITHMS:
            raise ConfigError(
                "conv_algorithm", self.conv_algorithm, f"must be one of {list(ALGORITHMS)}"
            )

    def key(self) -> str:
        """What must match for a checkpoint to be resumed under this configuration."""
        d = asdict(self)
        d.pop("data_dir")
        d.pop("steps")  # a resumed run may extend the step budget
        if d["conv_algorithm"] == "direct":  # keys of checkpoints written before the option
            d.pop("conv_algorithm")
        return json.dumps(d, sort_keys=True)


def make_config(recipe: str, *, data: Dataset | None = None, **overrides: Any) -> RunConfig:
    """A recipe's defaults with ``None``-valued overrides ignored; ``epochs`` becomes steps
    (counted on ``data`` when given, else on the dataset loaded for the purpose).

    Raises :class:`ConfigError` (a ``ValueError``) naming the first invalid option.
    """
    if recipe not in RECIPES:
        raise ConfigError("recipe", recipe, f"unknown; choose one of {sorted(RECIPES)}")
    r = RECIPES[recipe]
    o = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(o.get("data_dir"), os.PathLike):
        o["data_dir"] = os.fspath(o["data_dir"])
    unknown = sorted(set(o) - {f.name for f in fields(RunConfig)} - {"epochs"})
    if unknown:
        raise TypeError(f"make_config: unknown option(s) {unknown}")
    dataset = o.pop("dataset", r.dataset)
    if "batch_size" in o and r.batching == "full":  # any value, 0 too: the option is not for it
        raise ConfigError(
            "batch_size", o["batch_size"], f"does not apply: {recipe} trains on the full batch"
        )
    batch_size = o.pop("batch_size", r.batch_size)
    epochs = o.pop("epochs", None)
    steps = o.pop("steps", None)
    if epochs is not None and steps is not None:
        raise ConfigError("epochs", epochs, "give --steps or --epochs, not both")
    lr = o.pop("learning_rate", r.opt_kwargs["learning_rate"])
    cfg = RunConfig(
        recipe=recipe,
        dataset=dataset,
        steps=r.steps if steps is None else steps,
        batch_size=batch_size,
        optimizer=o.pop("optimizer", r.optimizer),
        # An int learning rate is a number; anything else is refused by RunConfig.
        learning_rate=float(lr) if is_int(lr) else lr,
        display_step=o.pop("display_step", r.display_step),
        **o,
    )
    if epochs is not None:
        _require_int("epochs", epochs, 1)
        if data is None:
            data = load_dataset(dataset, data_dir=cfg.data_dir)
        n = len(data.y_train)
        cfg = replace(cfg, steps=int(epochs) * batches_per_epoch(r.batching, n, batch_size))
    return cfg


def batches_per_epoch(batching: str, n: int, batch_size: int) -> int:
    if batching == "full":
        return 1
    if batching == "kfold":
        return max(1, int(n / batch_size))
    if batching == "sequential":
        return max(1, n // batch_size)
    return -(-n // batch_size)  # stream: ceil


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 0xBA7C4, epoch]))


def batch_indices(batching: str, n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Indices of the training batch used at ``step`` (0-based), a pure function of its inputs.

    - ``stream``: shuffled epochs joined end to end and cut into full batches (the lessons'
      ``tf.data ... repeat().shuffle().batch()``);
    - ``kfold``: the digits lesson's KFold folds over each epoch's permutation;
    - ``sequential``: unshuffled consecutive batches, remainder dropped (``BatchGenerator``);
    - ``full``: the whole training set.
    """
    if batching == "full":
        return np.arange(n, dtype=np.int64)
    if batching == "sequential":
        per = batches_per_epoch(batching, n, batch_size)
        start = (step % per) * batch_size
        return np.arange(start, start + batch_size, dtype=np.int64)
    if batching == "kfold":
        per = batches_per_epoch(batching, n, batch_size)
        epoch, k = divmod(step, per)
        return kfold_batches(n, batch_size, _epoch_rng(seed, epoch))[k]
    if batching == "stream":
        start = step * batch_size
        out = []
        while len(out) < batch_size:
            epoch, off = divmod(start, n)
            perm = _epoch_rng(seed, epoch).permutation(n)
            take = perm[off : off + batch_size - len(out)]
            out.extend(take.tolist())
            start += len(take)
        return np.asarray(out, dtype=np.int64)
    raise ValueError(f"unknown batching {batching!r}")


def prepare_inputs(recipe: Recipe, data: Dataset, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and test inputs in the recipe's layout (NHWC or flattened), in ``dtype``."""

    def shape(x: np.ndarray) -> np.ndarray:
        if recipe.image_input:
            if x.ndim != 4:
                raise ConfigError(
                    "dataset",
                    data.name,
                    f"{recipe.name} needs images (N, H, W, C); {data.name} has shape {x.shape}",
                )
            return x
        return x.reshape(x.shape[0], -1)

    return shape(data.x_train).astype(dtype), shape(data.x_test).astype(dtype)


def make_optimizer(cfg: RunConfig, recipe: Recipe) -> Optimizer:
    kw = dict(recipe.opt_kwargs) if cfg.optimizer == recipe.optimizer else {}
    kw["learning_rate"] = cfg.learning_rate
    return OPTIMIZERS[cfg.optimizer](**kw)


@dataclass
class Run:
    """Everything a step needs; ``params`` and ``opt_state`` are replaced, never mutated."""

    cfg: RunConfig
    recipe: Recipe
    layers: list[m.Layer]
    params: list[np.ndarray]
    optimizer: Optimizer
    opt_state: OptState
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    data: Dataset
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    #: Errata hooks: a replacement ``(out, labels) -> (loss, dloss/dout)`` and re-creating the
    #: optimizer before every step (the digits lesson's bug).
    loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]] | None = None
    reset_optimizer: bool = False

    @cached_property
    def data_fingerprint(self) -> str:
        """SHA-256 of the training and test arrays as the run uses them (dtype, shape and
        bytes): a checkpoint keeps it, so a resume on other data (the same ``--dataset`` from
        another ``--data-dir``, or changed files) is refused rather than trained on silently."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape};".encode())
            h.update(a.data)
        return h.hexdigest()


def build_run(cfg: RunConfig, data: Dataset | None = None) -> Run:
    recipe = RECIPES[cfg.recipe]
    data = data if data is not None else load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    x_train, x_test = prepare_inputs(recipe, data, cfg.dtype)
    if recipe.batching != "full" and cfg.batch_size > len(x_train):
        raise ConfigError(
            "batch_size",
            cfg.batch_size,
            f"exceeds the {len(x_train)} training samples of {data.name}",
        )
    layers = recipe.build(data.num_classes)
    init_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x1A17]))
    params = m.init_params(layers, x_train.shape[1:], init_rng, cfg.dtype)
    opt = make_optimizer(cfg, recipe)
    return Run(
        cfg,
        recipe,
        layers,
        params,
        opt,
        opt.init(params),
        x_train,
        data.y_train,
        x_test,
        data.y_test,
        data,
    )


def _batch_loss(run: Run, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The recipe's mean loss on one batch of outputs and its gradient w.r.t. ``out``."""
    if run.loss_fn is not None:
        return run.loss_fn(out, y)
    loss, lres = m.loss_fwd(run.recipe.loss, out, y, run.data.num_classes)
    return float(loss), m.loss_bwd(run.recipe.loss, lres, out.dtype)


def loss_and_grads(run: Run, idx: np.ndarray) -> tuple[float, float, list[np.ndarray]]:
    """Mean loss, batch accuracy and parameter gradients on the batch ``idx``."""
    x, y = run.x_train[idx], run.y_train[idx]
    out, res = m.forward(run.layers, run.params, x, conv_algorithm=run.cfg.conv_algorithm)
    loss, dout = _batch_loss(run, out, y)
    grads = m.backward(run.layers, res, dout, len(run.params))
    acc = float(np.mean(m.predict_classes(run.recipe.loss, out) == y))
    return float(loss), acc, grads


class BatchOutOfMemory(MemoryError):
    """A training step could not allocate what its batch needs (the batch size sets that;
    loading the data and the 1024-row evaluations do not depend on it)."""


def train_step(run: Run) -> tuple[float, float]:
    idx = batch_indices(
        run.recipe.batching, len(run.x_train), run.cfg.batch_size, run.cfg.seed, run.step
    )
    try:
        loss, acc, grads = loss_and_grads(run, idx)
    except MemoryError as e:
        raise BatchOutOfMemory(*e.args) from e
    if run.reset_optimizer:
        run.opt_state = run.optimizer.init(run.params)
    run.params, run.opt_state = run.optimizer.update(grads, run.opt_state, run.params)
    run.step += 1
    return loss, acc


def predict(run: Run, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Predicted classes of ``x`` under the current parameters, ``batch`` rows at a time."""
    preds = [
        m.predict_classes(
            run.recipe.loss,
            m.forward(
                run.layers, run.params, x[i : i + batch], conv_algorithm=run.cfg.conv_algorithm
            )[0],
        )
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)


def evaluate(run: Run, x: np.ndarray, y: np.ndarray, batch: int = 1024) -> float:
    """Accuracy of the current parameters on ``(x, y)``."""
    return float(np.mean(predict(run, x, batch) == y))


def heldout_metrics(
    run: Run, x: np.ndarray, y: np.ndarray, batch: int = 1024
) -> tuple[float, float]:
    """Mean loss (the recipe's, as in training) and accuracy on ``(x, y)``."""
    total, right = 0.0, 0
    for i in range(0, len(x), batch):
        out, _ = m.forward(
            run.layers, run.params, x[i : i + batch], conv_algorithm=run.cfg.conv_algorithm
        )
        yb = y[i : i + batch]
        total += _batch_loss(run, out, yb)[0] * len(yb)
        right += int(np.sum(m.predict_classes(run.recipe.loss, out) == yb))
    return total / len(x), right / len(x)


def batching_summary(cfg: RunConfig, n_train: int) -> str:
    """What a step trains on, e.g. ``KFold batches of 65-66 (22 per epoch)``."""
    batching = RECIPES[cfg.recipe].batching
    if batching == "full":
        return f"the full batch of {n_train}"
    per = batches_per_epoch(batching, n_train, cfg.batch_size)
    if batching == "kfold":
        sizes = sorted(set(kfold_sizes(n_train, per)))
        size = "-".join(str(v) for v in sizes)
        return f"KFold batches of {size} ({per} per epoch)"
    if batching == "sequential":
        return f"unshuffled batches of {cfg.batch_size} ({per} per epoch, remainder dropped)"
    return f"shuffled batches of {cfg.batch_size}"


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(run: Run, path: Path) -> None:
    """Write params, optimizer state, step and history to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {f"param_{i}": p for i, p in enumerate(run.params)}
    for name, slot in run.opt_state.slots.items():
        for i, a in enumerate(slot):
            arrays[f"slot_{name}_{i}"] = a
    meta = {
        "format": FORMAT_VERSION,
        "config_key": run.cfg.key(),
        "step": run.step,
        "iterations": run.opt_state.iterations,
        "slots": sorted(run.opt_state.slots),
        "n_params": len(run.params),
        "history": run.history,
        "data": run.data_fingerprint,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, lambda f: np.savez(f, **arrays))


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` with ``write(file)`` through a temporary file beside it, then
    ``os.replace``: readers see the old file or the whole new one.

    The temporary name is chosen before the file exists and the file is created inside the
    ``try``, so an exception at any point (a second Ctrl-C included) removes it;
    ``tempfile.mkstemp`` creates the file before returning its name, and a Ctrl-C in between
    once left a stray empty file. An ``OSError`` names ``path``: a full disk fails a write into
    the open file, whose error names no file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        # A failed write names the temporary file, or none; a failed rename already names both.
        failed_write = isinstance(e, OSError) and e.strerror and e.filename2 is None
        if failed_write and e.filename in (None, str(tmp)):
            e.filename = str(path)
        raise


#: The metadata a checkpoint holds, each field validated at load.
META_FIELDS = ("format", "config_key", "step", "iterations", "slots", "n_params", "history")
#: ... and the data's fingerprint (:attr:`Run.data_fingerprint`; absent from checkpoints written
#: before it, which resume unchecked).
OPTIONAL_META = ("data",)
#: A logged step's fields, and the held-out pair (absent from checkpoints written before it).
HISTORY_FIELDS = ("step", "loss", "accuracy")
HELDOUT_FIELDS = ("heldout_loss", "heldout_accuracy")


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_meta(path: Path, z: NpzArchive) -> Any:
    """The checkpoint's metadata, parsed from its ``meta`` array (checked, still untyped)."""
    header = z.headers.get("meta")
    if header is None:
        raise ValueError(
            f"{path}: an .npz without nnref's 'meta' entry (it holds {sorted(z.headers)[:6]}): "
            "not a checkpoint written by nnref train"
        )
    if header.dtype != np.uint8 or len(header.shape) != 1:
        raise ValueError(f"{path}: 'meta' is {header}, expected uint8 bytes of JSON")
    try:
        return json.loads(z.load("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: 'meta' is not JSON ({type(e).__name__}: {e})") from None


def _check_history(path: Path, history: Any, step: int) -> None:
    """Refuse a ``history`` that the loop could not have logged up to ``step``: a list of rows
    with the logged fields, steps increasing from 1 (the first step is always logged) up to
    ``step``, losses finite and >= 0, accuracies in [0, 1]."""

    def refuse(why: str) -> ValueError:
        return ValueError(f"{path}: meta field 'history' {why}")

    if not isinstance(history, list):
        raise refuse(f"must be a list of logged steps, got {_short(history)}")
    if bool(history) != (step > 0):
        raise refuse(f"holds {len(history)} logged steps at step {step}")
    previous = 0
    for k, row in enumerate(history):
        if not isinstance(row, dict) or set(row) not in (
            set(HISTORY_FIELDS),
            {*HISTORY_FIELDS, *HELDOUT_FIELDS},
        ):
            fields_ = ", ".join((*HISTORY_FIELDS, *HELDOUT_FIELDS))
            raise refuse(f"row {k} must be an object of {fields_}, got {_short(row)}")
        s = row["step"]
        if not is_int(s) or not (previous < s <= step) or (k == 0 and s != 1):
            first = "1" if k == 0 else f"an integer in {previous + 1}..{step}"
            raise refuse(f"row {k}: step must be {first}, got {_short(s)}")
        previous = s
        for name, value in row.items():
            if name == "step":
                continue
            hi = math.inf if name.endswith("loss") else 1.0
            # nnref writes floats; a JSON integer may exceed any float (10**400)
            if not isinstance(value, float) or not math.isfinite(value) or not 0 <= value <= hi:
                bounds = "a finite number >= 0" if hi == math.inf else "a number in [0, 1]"
                raise refuse(f"row {k}: {name} must be {bounds}, got {_short(value)}")


def _check_meta(path: Path, meta: Any, run: Run) -> None:
    """Refuse metadata of another format, another configuration (naming the options that
    differ), or with a field of the wrong type or range for ``run``."""
    got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
    if not (is_int(got) and got == FORMAT_VERSION):
        raise ValueError(f"{path}: unsupported checkpoint format {got!r}")
    missing = [k for k in META_FIELDS if k not in meta]
    unknown = sorted(set(meta) - set(META_FIELDS) - set(OPTIONAL_META))
    if missing or unknown:
        which = f"lacks {missing}" if missing else f"has unknown fields {unknown}"
        raise ValueError(f"{path}: the metadata {which}: not written by nnref train")
    key = meta["config_key"]
    if not isinstance(key, str):
        raise ValueError(f"{path}: meta field 'config_key' must be a string, got {_short(key)}")
    if key != run.cfg.key():
        raise ValueError(
            f"{path} was written with {_config_difference(key, run.cfg)}; resume with the same "
            "options, or choose another --out"
        )
    if "data" in meta and meta["data"] != run.data_fingerprint:
        raise ValueError(
            f"{path} was trained on other data than this run loads (their SHA-256 fingerprints "
            f"differ: {_short(meta['data'], 20)}, this run: {run.data_fingerprint[:17]}...): "
            f"the same --dataset from another --data-dir, or changed files; resume with the data "
            "it was trained on, or choose another --out"
        )
    for name in ("step", "iterations"):
        v = meta[name]
        if not is_int(v) or v < 0:
            raise ValueError(
                f"{path}: meta field '{name}' must be an integer >= 0, got {_short(v)}"
            )
    n = meta["n_params"]
    if not is_int(n) or n != len(run.params):
        raise ValueError(
            f"{path}: meta field 'n_params' is {_short(n)}, this model has {len(run.params)} "
            "parameters"
        )
    slots = sorted(run.opt_state.slots)
    if meta["slots"] != slots:
        raise ValueError(
            f"{path}: meta field 'slots' is {_short(meta['slots'])}, this run's optimizer keeps "
            f"{slots}"
        )
    _check_history(path, meta["history"], meta["step"])


def _config_difference(stored_key: str, cfg: RunConfig) -> str:
    """``--lr 0.1 (this run: 0.5), ...``: the options that differ between two config keys."""
    try:
        old = json.loads(stored_key)
    except (TypeError, json.JSONDecodeError):
        old = {}
    new = json.loads(cfg.key())
    for key in (old, new):  # keys leave the default conv algorithm out
        key.setdefault("conv_algorithm", "direct")
    diffs = [
        f"{FLAGS.get(k, k)} {old.get(k)!s} (this run: {new.get(k)!s})"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    return ", ".join(diffs) or "an unreadable configuration"


def load_checkpoint(run: Run, path: Path) -> None:
    """Restore ``run`` from ``path``.

    Every metadata field's type and range, and every array's name, shape and dtype (against
    this run's parameters and optimizer slots, from the ``.npy`` headers) is checked before any
    array is read. Refuses (``ValueError`` naming the file and the field or array) a file that
    is not an nnref checkpoint, a checkpoint of another configuration (naming the options that
    differ), an edited or damaged one, and parameters or slots holding NaN or inf (nnref never
    writes those).
    """
    with open_npz(path, "nnref checkpoint", invalid="not a valid nnref checkpoint") as z:
        meta = _read_meta(path, z)
        _check_meta(path, meta, run)
        expected = {f"param_{i}": (f"parameter {i}", p) for i, p in enumerate(run.params)}
        for name in sorted(run.opt_state.slots):
            for i, p in enumerate(run.params):
                expected[f"slot_{name}_{i}"] = (f"optimizer slot '{name}' of parameter {i}", p)
        unknown = sorted(set(z.headers) - set(expected) - {"meta"})
        if unknown:
            raise ValueError(f"{path}: arrays {unknown} are not nnref checkpoint entries")
        for key, (what, like) in expected.items():
            header = z.headers.get(key)
            if header is None:
                raise ValueError(f"{path}: array '{key}' ({what}) is missing")
            if header.shape != like.shape or header.dtype != like.dtype:
                raise ValueError(
                    f"{path}: array '{key}' is {header}, this run's {what} is "
                    f"{like.dtype}{like.shape}"
                )
        arrays = {key: z.load(key) for key in expected}
    for key, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"{path}: array '{key}' holds NaN or inf (nnref never writes such a checkpoint)"
            )
    n = len(run.params)
    run.params = [arrays[f"param_{i}"] for i in range(n)]
    run.opt_state = OptState(
        meta["iterations"],
        {s: [arrays[f"slot_{s}_{i}"] for i in range(n)] for s in run.opt_state.slots},
    )
    run.step = meta["step"]
    run.history = meta["history"]


def prepare_out(out: Path, *, resume: bool) -> None:
    """Check ``out`` before any training: a directory (created if missing) that nnref can write,
    holding no earlier run unless ``resume`` (then it must hold ``checkpoint.npz``).

    Raises :class:`ConfigError` on ``out``/``resume`` naming the path and the problem.
    """
    try:
        _check_out(out, resume=resume)
    except OSError as e:  # pathlib's exists()/is_dir() let ENAMETOOLONG, EACCES and others through
        raise ConfigError("out", str(out), f"cannot be checked ({e.strerror or e})") from None


def _check_out(out: Path, *, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError("out", str(out), "exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".nnref-write-test-{os.getpid()}-{secrets.token_hex(4)}"
        try:  # named before it exists: removed on every way out, as in _write_atomically
            probe.touch(exist_ok=False)
        finally:
            probe.unlink(missing_ok=True)
    except OSError as e:
        raise ConfigError("out", str(out), f"cannot be written ({e.strerror or e})") from None
    for name in OUTPUT_FILES:
        if (out / name).exists() and not (out / name).is_file():
            raise ConfigError("out", str(out), f"{name} there is not a regular file")
    ckpt = out / CHECKPOINT
    if resume and not ckpt.is_file():
        raise ConfigError("resume", None, f"no checkpoint at {ckpt}")
    if not resume:
        earlier = [name for name in OUTPUT_FILES if (out / name).exists()]
        if earlier:
            raise ConfigError(
                "out",
                str(out),
                f"already holds a run ({', '.join(earlier)}); add --resume to continue it, "
                "or choose another --out",
            )


# --------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class TrainResult:
    config: RunConfig
    history: list[dict[str, float]]
    train_accuracy: float
    test_accuracy: float
    seconds: float
    steps_run: int
    #: Test samples behind the history's held-out columns (the first ones of the test set).
    heldout_samples: int = 0
    test_samples: int = 0
    train_samples: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "history": self.history,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "train_samples": self.train_samples,
            "test_samples": self.test_samples,
            "heldout_samples": self.heldout_samples,
            "seconds": self.seconds,
            "steps_run": self.steps_run,
        }


class _CtrlC:
    """``train``'s handler of :data:`STOP_SIGNALS`. During the steps the first signal only sets
    ``pressed`` (and ``signum``), which the loop reads after each step (a KeyboardInterrupt
    inside a step could leave the parameters updated but the step count not), and a second
    raises KeyboardInterrupt at once. With ``at_once`` (after the last step: the final
    evaluation and the outputs have no step to end) the first raises. Installed by
    :func:`nnref._signals.handled`: outside the main thread it is not, ``pressed`` stays unset
    and a KeyboardInterrupt arrives as usual (SIGTERM ends the process)."""

    def __init__(self) -> None:
        self.pressed = False
        self.at_once = False
        self.signum: int = signal.SIGINT

    def __call__(self, signum: int, frame: Any) -> None:
        if not self.pressed:
            self.signum = signum
        if self.pressed or self.at_once:
            raise KeyboardInterrupt
        self.pressed = True


def _nonfinite_param(params: list[np.ndarray]) -> int | None:
    """Index of the first parameter array holding NaN or inf, else None."""
    return next((i for i, p in enumerate(params) if not np.all(np.isfinite(p))), None)


def train(
    cfg: RunConfig,
    *,
    out: Path | None = None,
    resume: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
    checkpoint_every: int = 500,
    stop_after: int | None = None,
    data: Dataset | None = None,
) -> TrainResult:
    """Train ``cfg``; with ``out``, keep a checkpoint there and write metrics and figures.

    Every step's loss is checked: a NaN or infinite loss (or parameter) stops the run with
    :class:`TrainingDiverged`, leaving the last checkpoint written before it. ``out`` is checked
    before the first step (:func:`prepare_out`). The first Ctrl-C (or SIGTERM, SIGHUP) ends the
    current step, writes the checkpoint and raises :class:`TrainingInterrupted`; after the last
    step (the final evaluation, the outputs) a Ctrl-C stops at once, and ``resume`` of that
    complete checkpoint finishes the outputs without training. ``stop_after`` ends the run early
    after that many steps (as an interruption would), leaving the checkpoint to resume from.
    SIGTERM and SIGHUP are handled as Ctrl-C while ``train`` runs: a caller that does not catch :class:`TrainingInterrupted` (a
    ``KeyboardInterrupt``) then ends as on Ctrl-C, not killed by the signal.
    Each logged step (every ``display_step``, the first and the last) records the batch loss and
    accuracy and the held-out loss and accuracy on the first :data:`HELDOUT_MAX` test samples.
    """
    _require_int("checkpoint_every", checkpoint_every, 1)
    if out is None:
        if resume:
            raise ConfigError("resume", None, "needs --out (the directory holding checkpoint.npz)")
        return _train(cfg, None, resume, progress, log, checkpoint_every, stop_after, data)
    prepare_out(out, resume=resume)
    with _run_lock(out):
        prepare_out(out, resume=resume)  # again: a run that held the lock may have filled it
        return _train(cfg, out, resume, progress, log, checkpoint_every, stop_after, data)


@contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the directory ``out`` for the run (released when the
    process ends, however it ends), or raise :class:`ConfigError` when another run holds it:
    two runs started into the same empty ``--out`` both passed its check, then overwrote each
    other's checkpoint and outputs. The lock is a guard, not a requirement: where the OS or the
    file system has no ``flock`` on a directory (Windows; NFS emulates it with byte-range locks
    that need a file open for writing) the run goes ahead unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the platforms nnref is tested on
        yield
        return
    try:
        fd = os.open(out, os.O_RDONLY)
    except OSError:  # a directory nnref may write but not read (mode 0300): no lock
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                "out",
                str(out),
                "is in use by another nnref train run; wait for it to end, or choose another --out",
            ) from None
        except OSError:  # a file system without flock on directories (NFS: EBADF): no lock
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def _train(
    cfg: RunConfig,
    out: Path | None,
    resume: bool,
    progress: bool,
    log: Callable[[str], None],
    checkpoint_every: int,
    stop_after: int | None,
    data: Dataset | None,
) -> TrainResult:
    """:func:`train`'s run, ``out`` checked (and locked)."""
    run = build_run(cfg, data)
    ckpt = out / CHECKPOINT if out is not None else None
    saved: int | None = None  # step of the checkpoint on disk
    if resume and ckpt is not None:
        load_checkpoint(run, ckpt)
        if run.step > cfg.steps:
            raise ConfigError(
                "steps",
                cfg.steps,
                f"is below the checkpoint's step {run.step} in {out}; pass --steps "
                f"{run.step + 1} or more to continue it",
            )
        finishing = run.step == cfg.steps
        if finishing and _outputs_complete(run, out):  # refuse rather than rewrite the outputs
            raise ConfigError(
                "steps",
                cfg.steps,
                f"the run in {out} is complete (step {run.step} of {run.step}); pass a larger "
                "--steps to continue it",
            )
        saved = run.step
        log(
            f"resumed from {ckpt} at step {run.step}"
            + (": training is complete, finishing the outputs" if finishing else "")
        )
    n_held = min(HELDOUT_MAX, len(run.x_test))
    x_held, y_held = run.x_test[:n_held], run.y_test[:n_held]
    t0 = time.perf_counter()
    start = run.step
    bar = _progress(cfg.steps - start, progress)
    emit = bar.write if bar is not None and log is print else log  # lines above the bar

    def diverged(what: str) -> TrainingDiverged:
        kept = (
            f"; {ckpt} (step {saved}) is kept"
            if saved is not None
            else ("; no checkpoint was written before it" if ckpt is not None else "")
        )
        return TrainingDiverged(
            f"{what} at step {run.step} (learning rate {cfg.learning_rate:g}): training "
            f"diverged; lower the learning rate (--lr){kept}",
            run.step,
            ckpt if saved is not None else None,
            saved,
        )

    def interrupted() -> TrainingInterrupted:
        return TrainingInterrupted(
            run.step,
            ckpt if saved is not None else None,
            saved,
            complete=ckpt is not None and saved == cfg.steps,
            signum=ctrl_c.signum,
        )

    ctrl_c = _CtrlC()
    try:
        # Overflow is detected below, step by step: NumPy's warnings would only repeat it.
        with (
            np.errstate(over="ignore", invalid="ignore", divide="ignore"),
            handled(STOP_SIGNALS, ctrl_c),
        ):
            try:
                while run.step < cfg.steps:
                    loss, acc = train_step(run)
                    if not math.isfinite(loss):
                        raise diverged(f"the loss is {loss}")
                    if run.step % cfg.display_step == 0 or run.step in (1, cfg.steps):
                        h_loss, h_acc = heldout_metrics(run, x_held, y_held)
                        if not math.isfinite(h_loss):  # the parameters this step produced overflow
                            raise diverged(f"the held-out loss is {h_loss}")
                        run.history.append(
                            {
                                "step": run.step,
                                "loss": loss,
                                "accuracy": acc,
                                "heldout_loss": h_loss,
                                "heldout_accuracy": h_acc,
                            }
                        )
                        emit(
                            f"step: {run.step}, loss: {loss:f}, accuracy: {acc:f}, held-out "
                            f"loss: {h_loss:f}, accuracy: {h_acc:f}"
                        )
                    if bar is not None:
                        bar.update(1)
                    last = run.step == cfg.steps
                    stopping = ctrl_c.pressed or (
                        stop_after is not None and run.step - start >= stop_after
                    )
                    if ckpt is not None and (run.step % checkpoint_every == 0 or last or stopping):
                        if _nonfinite_param(run.params) is not None:
                            raise diverged("a parameter is not finite")
                        save_checkpoint(run, ckpt)
                        saved = run.step
                    if ctrl_c.pressed:
                        raise interrupted()
                    if stopping:
                        break
            finally:
                if bar is not None:
                    bar.close()
            ctrl_c.at_once = True
            if ctrl_c.pressed:  # after the last step's check
                raise interrupted()
            if _nonfinite_param(run.params) is not None:
                raise diverged("a parameter is not finite")
            seconds = time.perf_counter() - t0
            pred_test = predict(run, run.x_test)
            result = TrainResult(
                cfg,
                run.history,
                evaluate(run, run.x_train, run.y_train),
                float(np.mean(pred_test == run.y_test)),
                seconds,
                run.step - start,
                n_held,
                len(run.x_test),
                len(run.x_train),
            )
            log(
                f"test accuracy: {result.test_accuracy:f} (train {result.train_accuracy:f}, "
                f"{result.steps_run} steps in {seconds:.1f} s)"
            )
            if out is not None:
                skipped = write_outputs(run, result, out, pred_test)
                if skipped:
                    log(skipped)
    except KeyboardInterrupt as e:  # a second Ctrl-C, one after the steps, or another thread's
        if isinstance(e, TrainingInterrupted):
            raise
        raise interrupted() from None
    return result


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar on stderr, only when stderr is a terminal (redirected to a file, tqdm would
    write a redraw every tenth of a second)."""
    if not enabled or total <= 0:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    if not sys.stderr.isatty():
        return None
    return tqdm(total=total, unit="step", file=sys.stderr, leave=False)


def write_outputs(
    run: Run, result: TrainResult, out: Path, pred_test: np.ndarray | None = None
) -> str | None:
    """metrics.csv, with matplotlib curves.png and predictions.png (for images or two
    features), and metrics.json, each written atomically, metrics.json last: a metrics.json of
    the checkpoint's history means the others were written (see :func:`_outputs_complete`).

    ``pred_test``: the predicted classes of the whole test set (computed when not given).
    Returns a note when the pictures were skipped (matplotlib missing), else None.
    """
    out.mkdir(parents=True, exist_ok=True)
    csv_text = io.StringIO()
    w = csv.DictWriter(
        csv_text,
        fieldnames=["step", "loss", "accuracy", "heldout_loss", "heldout_accuracy"],
        restval="",
    )
    w.writeheader()
    w.writerows(run.history)
    _write_atomically(out / "metrics.csv", lambda f: f.write(csv_text.getvalue().encode()))
    plt = _pyplot()
    if plt is not None:
        if pred_test is None:
            pred_test = predict(run, run.x_test)
        pictures = [("curves.png", lambda: curves_figure(result))]
        if _draws_predictions(run.data.x_test):
            pictures.append(("predictions.png", lambda: predictions_figure(run, pred_test)))
        for name, draw in pictures:
            fig = draw()
            try:
                _write_atomically(out / name, partial(fig.savefig, format="png", dpi=100))
            finally:
                plt.close(fig)
    metrics = json.dumps(result.to_json(), indent=1).encode()
    _write_atomically(out / "metrics.json", lambda f: f.write(metrics))
    if plt is None:
        return (
            "curves.png and predictions.png skipped: matplotlib is not installed "
            "(pip install 'nnref[plot]')"
        )
    return None


def _pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _outputs_complete(run: Run, out: Path) -> bool:
    """Whether ``out`` holds every output of ``run`` as loaded from its checkpoint: a
    metrics.json (written last) of the same history, and each file written before it."""
    try:
        written = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(written, dict) or written.get("history") != run.history:
        return False
    names = ["metrics.csv"]
    if _pyplot() is not None:
        names.append("curves.png")
        if _draws_predictions(run.data.x_test):
            names.append("predictions.png")
    return all((out / name).is_file() for name in names)


def _draws_predictions(x: np.ndarray) -> bool:
    """Whether :func:`predictions_figure` has a picture for test inputs ``x``: images, or two
    features."""
    return x.ndim == 4 or (x.ndim == 2 and x.shape[1] == 2)


def curves_figure(result: TrainResult) -> Any:
    """Loss and accuracy against the step: the training batch's, and the held-out set's at
    each logged step. Needs matplotlib; returns the ``Figure``."""
    import matplotlib.pyplot as plt

    hist = result.history
    held = [h for h in hist if "heldout_loss" in h]
    n_test = result.test_samples
    held_label = (
        f"held-out ({result.heldout_samples} test samples)"
        if result.heldout_samples == n_test
        else f"held-out (first {result.heldout_samples} of {n_test} test samples)"
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot([h["step"] for h in hist], [h[key] for h in hist], label="training batch")
        if held:
            ax.plot(
                [h["step"] for h in held],
                [h[f"heldout_{key}"] for h in held],
                "o-",
                markersize=3,
                label=held_label,
            )
        ax.set(xlabel="step", ylabel=key, title=key)
        ax.legend(fontsize=8)
    axes[1].set_ylim(0, 1.02)
    cfg = result.config
    fig.suptitle(
        f"{cfg.recipe} on {cfg.dataset}, {hist[-1]['step']} steps: final test accuracy "
        f"{result.test_accuracy:.4f} ({n_test} samples)"
    )
    fig.tight_layout()
    return fig


def predictions_figure(
    run: Run, pred: np.ndarray, *, grid: tuple[int, int] = (2, 10)
) -> Any | None:
    """Test predictions ``pred`` (one class per test sample). Images: a grid titled
    ``true→predicted``, the misclassified ones first (up to half the grid, in red), then
    correctly classified ones, each group in test-set order. Two-feature data: the predicted
    class regions, test points coloured by their true class, misclassified ones crossed out.
    Needs matplotlib; returns the ``Figure`` (None for other data: nothing to draw)."""
    import matplotlib.pyplot as plt

    x, y = run.data.x_test, run.y_test
    if not _draws_predictions(x):
        return None
    wrong, right = np.flatnonzero(pred != y), np.flatnonzero(pred == y)
    if x.ndim == 4:
        rows, cols = grid
        shown_wrong = wrong[: rows * cols // 2]
        shown = [*shown_wrong, *right[: rows * cols - len(shown_wrong)]]
        fig, axes = plt.subplots(rows, cols, figsize=(cols, 1.4 * rows))
        for k, ax in enumerate(np.ravel(axes)):
            ax.axis("off")
            if k < len(shown):
                i = shown[k]
                ax.imshow(x[i, :, :, 0], cmap="gray_r")
                color = "green" if pred[i] == y[i] else "red"
                ax.set_title(f"{y[i]}→{pred[i]}", color=color, fontsize=10)
        head = (
            f"{len(wrong)} of {len(y)} wrong, {len(shown_wrong)} shown first in red"
            if len(wrong)
            else f"all {len(y)} right"
        )
        fig.suptitle(f"test images, true→predicted label ({head})", fontsize=10)
    else:
        lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
        g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
        mesh = np.stack([g0.ravel(), g1.ravel()], 1).astype(run.x_test.dtype)
        fig, ax = plt.subplots(figsize=(5, 4.2))
        ax.contourf(g0, g1, predict(run, mesh).reshape(g0.shape), alpha=0.2, cmap="coolwarm")
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", edgecolors="k", s=25)
        if len(wrong):
            ax.scatter(x[wrong, 0], x[wrong, 1], marker="x", c="k", s=60, label="misclassified")
            ax.legend(fontsize=8)
        ax.set(xlabel="feature 0", ylabel="feature 1")
        ax.set_title(
            f"test points by true class, regions by prediction: {len(wrong)} of {len(y)} wrong",
            fontsize=9,
        )
    fig.tight_layout()
    return fig


__all__ = [
    "ConfigError",
    "RunConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "batch_indices",
    "curves_figure",
    "make_config",
    "predictions_figure",
    "prepare_out",
    "train",
]
