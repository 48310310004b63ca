"""The training loop: deterministic, resumable, bit-identical for a given seed.

Batches are a pure function of ``(seed, step)`` (each epoch's permutation comes from its own
``SeedSequence``), so a run resumed from a checkpoint continues exactly where it stopped.
Checkpoints hold the parameters, the optimizer state, the step and the metrics so far, in one
``.npz`` written atomically (temporary file, then ``os.replace``), loaded without pickle.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnref.data.batching import kfold_batches
from nnref.data.datasets import Dataset, load_dataset
from nnref.ops.conv import ALGORITHMS
from nnref.optim import OPTIMIZERS, Optimizer, OptState
from nnref.train import model as m
from nnref.train.recipes import RECIPES, Recipe

CHECKPOINT = "checkpoint.npz"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RunConfig:
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
    (counted on ``data`` when given, else on the dataset loaded for the purpose)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    r = RECIPES[recipe]
    o = {k: v for k, v in overrides.items() if v is not None}
    dataset = o.pop("dataset", r.dataset)
    batch_size = o.pop("batch_size", r.batch_size)
    epochs = o.pop("epochs", None)
    steps = o.pop("steps", None)
    if epochs is not None and steps is not None:
        raise ValueError("give --steps or --epochs, not both")
    cfg = RunConfig(
        recipe=recipe,
        dataset=dataset,
        steps=r.steps if steps is None else steps,
        batch_size=batch_size,
        optimizer=o.pop("optimizer", r.optimizer),
        learning_rate=float(o.pop("learning_rate", r.opt_kwargs["learning_rate"])),
        display_step=o.pop("display_step", r.display_step),
        **o,
    )
    if cfg.steps < 0:
        raise ValueError(f"steps must be >= 0, got {cfg.steps}")
    if cfg.conv_algorithm not in ALGORITHMS:
        raise ValueError(
            f"conv_algorithm must be one of {list(ALGORITHMS)}, got {cfg.conv_algorithm!r}"
        )
    if epochs is not None:
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
                raise ValueError(
                    f"recipe {recipe.name} needs image data (N, H, W, C), dataset has {x.shape}"
                )
            return x
        return x.reshape(x.shape[0], -1)

    return shape(data.x_train).astype(dtype), shape(data.x_test).astype(dtype)


def make_optimizer(cfg: RunConfig, recipe: Recipe) -> Optimizer:
    kw = dict(recipe.opt_kwargs) if cfg.optimizer == recipe.optimizer else {}
    kw["learning_rate"] = cfg.learning_rate
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
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


def build_run(cfg: RunConfig, data: Dataset | None = None) -> Run:
    recipe = RECIPES[cfg.recipe]
    data = data if data is not None else load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    x_train, x_test = prepare_inputs(recipe, data, cfg.dtype)
    if recipe.batching != "full" and cfg.batch_size > len(x_train):
        raise ValueError(f"batch size {cfg.batch_size} exceeds the {len(x_train)} training samples")
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


def loss_and_grads(run: Run, idx: np.ndarray) -> tuple[float, float, list[np.ndarray]]:
    """Mean loss, batch accuracy and parameter gradients on the batch ``idx``."""
    x, y = run.x_train[idx], run.y_train[idx]
    out, res = m.forward(run.layers, run.params, x, conv_algorithm=run.cfg.conv_algorithm)
    if run.loss_fn is not None:
        loss, dout = run.loss_fn(out, y)
    else:
        loss, lres = m.loss_fwd(run.recipe.loss, out, y, run.data.num_classes)
        dout = m.loss_bwd(run.recipe.loss, lres, out.dtype)
    grads = m.backward(run.layers, res, dout, len(run.params))
    acc = float(np.mean(m.predict_classes(run.recipe.loss, out) == y))
    return float(loss), acc, grads


def train_step(run: Run) -> tuple[float, float]:
    idx = batch_indices(
        run.recipe.batching, len(run.x_train), run.cfg.batch_size, run.cfg.seed, run.step
    )
    loss, acc, grads = loss_and_grads(run, idx)
    if run.reset_optimizer:
        run.opt_state = run.optimizer.init(run.params)
    run.params, run.opt_state = run.optimizer.update(grads, run.opt_state, run.params)
    run.step += 1
    return loss, acc


def evaluate(run: Run, x: np.ndarray, y: np.ndarray, batch: int = 1024) -> float:
    preds = []
    for i in range(0, len(x), batch):
        out, _ = m.forward(
            run.layers, run.params, x[i : i + batch], conv_algorithm=run.cfg.conv_algorithm
        )
        preds.append(m.predict_classes(run.recipe.loss, out))
    return float(np.mean(np.concatenate(preds) == y))


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
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ckpt-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(run: Run, path: Path) -> None:
    """Restore ``run`` from ``path``; refuses a checkpoint from another configuration."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
        meta = json.loads(bytes(stored.pop("meta")).decode())
        n = int(meta["n_params"])
        params = [stored[f"param_{i}"] for i in range(n)]
        slots = {name: [stored[f"slot_{name}_{i}"] for i in range(n)] for name in meta["slots"]}
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        zipfile.BadZipFile,
        json.JSONDecodeError,
        UnicodeDecodeError,
    ) as e:
        raise ValueError(
            f"{path}: not a valid nnref checkpoint ({type(e).__name__}: {e})"
        ) from None
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint format {meta.get('format')!r}")
    if meta["config_key"] != run.cfg.key():
        raise ValueError(
            f"{path}: checkpoint was written by another configuration:\n  {meta['config_key']}\n"
            f"this run is:\n  {run.cfg.key()}"
        )
    if len(params) != len(run.params):
        raise ValueError(f"{path}: {len(params)} parameters, this model has {len(run.params)}")
    for p, q in zip(params, run.params, strict=True):
        if p.shape != q.shape or p.dtype != q.dtype:
            raise ValueError(
                f"{path}: parameter {p.dtype}{p.shape} does not match {q.dtype}{q.shape}"
            )
    run.params = params
    run.opt_state = OptState(int(meta["iterations"]), slots)
    run.step = int(meta["step"])
    run.history = list(meta["history"])


# --------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class TrainResult:
    config: RunConfig
    history: list[dict[str, float]]
    train_accuracy: float
    test_accuracy: float
    seconds: float
    steps_run: int

    def to_json(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "history": self.history,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "seconds": self.seconds,
            "steps_run": self.steps_run,
        }


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

    ``stop_after`` ends the run early after that many steps (as an interruption would), leaving
    the checkpoint to resume from.
    """
    run = build_run(cfg, data)
    ckpt = out / CHECKPOINT if out is not None else None
    if resume:
        if ckpt is None or not ckpt.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
        load_checkpoint(run, ckpt)
        log(f"resumed from {ckpt} at step {run.step}")
    t0 = time.perf_counter()
    start = run.step
    bar = _progress(cfg.steps - start, progress)
    emit = bar.write if bar is not None and log is print else log  # lines above the bar
    while run.step < cfg.steps:
        loss, acc = train_step(run)
        if run.step % cfg.display_step == 0 or run.step == 1:
            run.history.append({"step": run.step, "loss": loss, "accuracy": acc})
            emit(f"step: {run.step}, loss: {loss:f}, accuracy: {acc:f}")
        if bar is not None:
            bar.update(1)
        if ckpt is not None and run.step % checkpoint_every == 0:
            save_checkpoint(run, ckpt)
        if stop_after is not None and run.step - start >= stop_after:
            break
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    if ckpt is not None:
        save_checkpoint(run, ckpt)
    result = TrainResult(
        cfg,
        run.history,
        evaluate(run, run.x_train, run.y_train),
        evaluate(run, run.x_test, run.y_test),
        seconds,
        run.step - start,
    )
    log(
        f"test accuracy: {result.test_accuracy:f} (train {result.train_accuracy:f}, "
        f"{result.steps_run} steps in {seconds:.1f} s)"
    )
    if out is not None:
        write_outputs(run, result, out)
    return result


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total <= 0:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="step", file=sys.stderr, leave=False)


def write_outputs(run: Run, result: TrainResult, out: Path) -> None:
    """metrics.csv, metrics.json and, with matplotlib, curves.png and predictions.png."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "loss", "accuracy"])
        w.writeheader()
        w.writerows(run.history)
    (out / "metrics.json").write_text(json.dumps(result.to_json(), indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    steps = [h["step"] for h in run.history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(steps, [h["loss"] for h in run.history])
    a1.set(xlabel="step", ylabel="batch loss", title=f"{run.cfg.recipe} on {run.cfg.dataset}")
    a2.plot(steps, [h["accuracy"] for h in run.history])
    a2.set(
        xlabel="step",
        ylabel="batch accuracy",
        ylim=(0, 1.02),
        title=f"test accuracy {result.test_accuracy:.3f}",
    )
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)
    if run.data.x_test.ndim == 4:
        n = min(20, len(run.x_test))
        out_, _ = m.forward(
            run.layers, run.params, run.x_test[:n], conv_algorithm=run.cfg.conv_algorithm
        )
        pred = m.predict_classes(run.recipe.loss, out_)
        fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                ax.imshow(run.data.x_test[i, :, :, 0], cmap="gray_r")
                ok = pred[i] == run.y_test[i]
                ax.set_title(f"{pred[i]}", color="green" if ok else "red", fontsize=10)
        fig.suptitle("test images, predicted label (red: wrong)")
        fig.tight_layout()
        fig.savefig(out / "predictions.png", dpi=100)
        plt.close(fig)


__all__ = ["RunConfig", "TrainResult", "batch_indices", "make_config", "train"]
