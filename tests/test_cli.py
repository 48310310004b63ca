"""``nnref train`` / ``nnref errata`` / ``nnref`` itself used carelessly: one line on stderr naming
the flag and the value, exit 2 for usage errors, 1 for a diverged run, 130 for Ctrl-C; never a
traceback, never a run lost after training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnref.cli import main


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["train", "mlp", "--log-every", "0", "--steps", "3"], "--log-every 0: must be a positive"),
        (["train", "mlp", "--lr", "nan"], "--lr nan: must be a finite number > 0"),
        (["train", "mlp", "--lr", "inf"], "--lr inf: must be a finite number > 0"),
        (["train", "mlp", "--lr", "-0.1"], "--lr -0.1: must be a finite number > 0"),
        (["train", "mlp", "--lr", "1e-50"], "--lr 1e-50: rounds to 0 or inf in float32"),
        (["train", "mlp", "--seed", "-1"], "--seed -1: must be an integer >= 0"),
        (["train", "mlp", "--batch-size", "0"], "--batch-size 0: must be a positive integer"),
        (["train", "mlp", "--steps", "0"], "--steps 0: must be a positive integer"),
        (["train", "mlp", "--epochs", "0"], "--epochs 0: must be a positive integer"),
        (["train", "mlp", "--steps", "x"], "argument --steps: invalid int value: 'x'"),
        (["train", "mlp", "--steps", "2", "--epochs", "1"], "--epochs: not allowed with"),
        (["train", "rnn"], "argument recipe: invalid choice: 'rnn'"),
        (["train", "mlp", "--dtype", "float16"], "argument --dtype: invalid choice"),
        (["train", "sigmoid-mse", "--batch-size", "8"], "--batch-size 8: does not apply"),
        (["train", "sigmoid-mse", "--batch-size", "0"], "--batch-size 0: does not apply"),
        (["train", "mlp", "--batch-size", "5000", "--steps", "1"], "--batch-size 5000: exceeds"),
        (["train", "cnn", "--dataset", "toy", "--steps", "1"], "--dataset toy: cnn needs images"),
        (["train", "mlp", "--resume"], "--resume: needs --out"),
        (["train", "mlp", "--out", ""], "--out '': is empty"),
        (["errata", "--steps", "0"], "--steps 0: must be a positive integer"),
        (["errata", "--seed", "-3"], "--seed -3: must be an integer >= 0"),
        (["errata", "--steps", "1.5"], "argument --steps: invalid int value: '1.5'"),
    ],
)
def test_usage_errors_are_one_line_naming_flag_and_value(argv, expect, capsys) -> None:
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"nnref {argv[0]}: ")
    assert expect in line


def test_data_dir_errors_name_the_flag_and_what_is_wrong(tmp_path, capsys) -> None:
    f = tmp_path / "mnist.npz"
    f.write_bytes(b"")
    cases = [
        (["--data-dir", str(tmp_path)], "applies to --dataset mnist only (this run uses digits)"),
        (["--dataset", "mnist", "--data-dir", str(f)], f"--data-dir {f}: is not a directory"),
        (["--dataset", "mnist", "--data-dir", str(tmp_path / "no")], "does not exist"),
        (["--dataset", "mnist", "--data-dir", ""], "--data-dir '': is empty"),
    ]
    for flags, expect in cases:
        assert main(["train", "mlp", "--steps", "1", *flags]) == 2
        assert expect in _one_line_error(capsys)


def test_mnist_files_of_the_wrong_kind_are_named(tmp_path, capsys) -> None:
    npz = tmp_path / "mnist.npz"
    for content, expect in [
        (b"", "the file is empty"),
        (b"x_train,y_train\n1,2\n", "it holds text"),
        (np.random.default_rng(0).bytes(200), "it starts with bytes"),
    ]:
        npz.write_bytes(content)
        argv = ["train", "cnn", "--dataset", "mnist", "--data-dir", str(tmp_path), "--steps", "1"]
        assert main(argv) == 2
        line = _one_line_error(capsys)
        assert f"{npz}: not an MNIST .npz file" in line
        assert expect in line
        assert "pickled" not in line


@pytest.mark.parametrize("recipe", ["cnn", "mlp"])
def test_mnist_without_test_images_is_refused_before_training(recipe, tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    npz = tmp_path / "mnist.npz"
    np.savez(
        npz,
        x_train=rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 8),
        x_test=np.zeros((0, 28, 28), np.uint8),
        y_test=np.zeros(0, np.int64),
    )
    argv = ["train", recipe, "--dataset", "mnist", "--data-dir", str(tmp_path), "--steps", "1"]
    assert main([*argv, "--batch-size", "4"]) == 2
    assert _one_line_error(capsys) == (
        f"nnref train: {npz}: x_test holds no images (shape (0, 28, 28)): the test set needs "
        "at least one"
    )


def test_resume_on_other_data_is_refused_naming_the_data(tmp_path, capsys, write_mnist) -> None:
    """--resume with another --data-dir (or changed files) once continued on the other data
    without a word: --data-dir is not part of the options a checkpoint must match (a moved
    copy of the same files resumes), so the checkpoint keeps a fingerprint of the data."""
    a, b = write_mnist(tmp_path / "a", 16, 8), write_mnist(tmp_path / "b", 16, 8, seed=1)
    out = tmp_path / "run"
    argv = ["train", "mlp", "--dataset", "mnist", "--out", str(out), "--no-progress"]
    assert main([*argv, "--data-dir", str(a), "--steps", "2", "--batch-size", "4"]) == 0
    capsys.readouterr()
    ckpt = (out / "checkpoint.npz").read_bytes()
    again = [*argv, "--steps", "4", "--batch-size", "4", "--resume"]
    assert main([*again, "--data-dir", str(b)]) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"nnref train: {out / 'checkpoint.npz'} was trained on other data")
    assert "resume with the data it was trained on, or choose another --out" in line
    assert (out / "checkpoint.npz").read_bytes() == ckpt
    moved = tmp_path / "moved"
    a.rename(moved)  # the same files elsewhere: the same data
    assert main([*again, "--data-dir", str(moved)]) == 0


def test_out_problems_are_found_before_the_first_step(tmp_path, capsys) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    taken = tmp_path / "taken"
    (taken / "metrics.csv").mkdir(parents=True)
    for out, expect in [
        (a_file, "exists and is not a directory"),
        (a_file / "sub", "cannot be written"),
        (taken, "metrics.csv there is not a regular file"),
    ]:
        assert main(["train", "mlp", "--steps", "5", "--out", str(out), "--no-progress"]) == 2
        captured = capsys.readouterr()
        assert "step:" not in captured.out  # nothing was trained
        assert f"--out {out}: {expect}" in captured.err


@pytest.mark.parametrize("flag", ["--out", "--data-dir"])
def test_an_over_long_path_is_a_usage_error_shortened(flag, tmp_path, capsys) -> None:
    long = str(tmp_path / ("x" * 300))  # one component over NAME_MAX: ENAMETOOLONG on stat
    mnist = ["--dataset", "mnist"] if flag == "--data-dir" else []
    assert main(["train", "mlp", "--steps", "1", "--no-progress", *mnist, flag, long]) == 2
    captured = capsys.readouterr()
    assert "step:" not in captured.out
    assert captured.err == (
        f"nnref train: {flag} {long[:80]}...{long[-60:]} ({len(long)} characters): cannot be "
        "checked (File name too long)\n"
    )


def _train(out: Path, *extra: str) -> list[str]:
    return ["train", "mlp", "--out", str(out), "--no-progress", "--log-every", "10", *extra]


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_stop_signals_outside_training_stop_with_a_line_and_their_exit_code(
    name, code, capsys, monkeypatch
) -> None:
    """SIGTERM (and SIGHUP: a closed terminal) during a command other than training (here
    errata's runs) once killed the process without a word; it now stops as Ctrl-C does,
    naming the signal, and the handlers before the command are back after it."""
    from nnref.train import errata

    signum = getattr(signal, name)

    def terminated(*a, **k):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError(f"{name} was not raised")

    monkeypatch.setattr(errata, "run_errata", terminated)
    before = signal.getsignal(signum)
    assert main(["errata", "--steps", "2"]) == code
    assert _one_line_error(capsys) == f"nnref errata: stopped by {name}"
    assert signal.getsignal(signum) is before


def test_a_run_into_a_directory_another_run_is_using_is_refused(tmp_path, capsys) -> None:
    """Two runs started into the same empty --out both passed its check, then overwrote each
    other's checkpoint and outputs (the last writer won); the second is now refused while the
    first holds the directory, and nothing of it is touched."""
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running nnref train holds it
        assert main(_train(out, "--steps", "5")) == 2
        assert _one_line_error(capsys) == (
            f"nnref train: --out {out}: is in use by another nnref train run; wait for "
            "it to end, or choose another --out"
        )
        assert list(out.iterdir()) == []
    finally:
        os.close(fd)
    assert main(_train(out, "--steps", "5")) == 0  # released: the run goes ahead
    assert (out / "checkpoint.npz").is_file()


def test_a_finished_run_is_never_overwritten_or_rerun(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train(out, "--steps", "20")) == 0
    ckpt = (out / "checkpoint.npz").read_bytes()
    metrics = (out / "metrics.json").read_text()
    capsys.readouterr()
    # The same command again, without --resume: refused, nothing touched.
    assert main(_train(out, "--steps", "20")) == 2
    assert "already holds a run" in _one_line_error(capsys)
    # --resume with a budget at or below the checkpoint's step: refused, nothing rewritten.
    assert main(_train(out, "--steps", "10", "--resume")) == 2
    assert "--steps 10: is below the checkpoint's step 20" in _one_line_error(capsys)
    assert main(_train(out, "--steps", "20", "--resume")) == 2
    assert "is complete (step 20 of 20)" in _one_line_error(capsys)
    # A changed option is named with both values, not two dumped configurations.
    assert main(_train(out, "--steps", "30", "--resume", "--lr", "0.5")) == 2
    line = _one_line_error(capsys)
    assert "written with --lr 0.1 (this run: 0.5)" in line
    assert "{" not in line
    assert (out / "checkpoint.npz").read_bytes() == ckpt
    assert (out / "metrics.json").read_text() == metrics


@pytest.mark.parametrize("fault", ["ctrl-c", "disk-full"])
def test_a_run_cut_while_writing_its_outputs_is_finished_by_resume(
    fault, tmp_path, capsys, monkeypatch
) -> None:
    """A Ctrl-C (exit 130) or a full disk (exit 1) while the curves are drawn: the message says
    that --resume finishes the outputs, and it does; a finished run is then refused."""
    from nnref.train import loop

    def cut(*args, **kwargs):
        if fault == "ctrl-c":
            raise KeyboardInterrupt
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop, "curves_figure", cut)
    out = tmp_path / "run"
    ckpt = out / "checkpoint.npz"
    assert main(_train(out, "--steps", "20")) == (130 if fault == "ctrl-c" else 1)
    assert _one_line_error(capsys) == (
        "nnref train: interrupted after the last step (20), before the metrics and figures were "
        f"all written; {ckpt} keeps the trained run: run the same command with --resume to "
        "finish the outputs"
        if fault == "ctrl-c"
        else "nnref train: could not write the outputs: [Errno 28] No space left on device; once "
        f"that is fixed, the same command with --resume continues from {ckpt} (or, after the "
        "last step, writes the outputs)"
    )
    monkeypatch.undo()
    assert main(_train(out, "--steps", "20", "--resume")) == 0
    text = capsys.readouterr().out
    assert "at step 20: training is complete, finishing the outputs" in text
    assert "wrote metrics.csv, metrics.json, curves.png, predictions.png, checkpoint.npz" in text
    assert main(_train(out, "--steps", "20", "--resume")) == 2
    assert "is complete (step 20 of 20)" in _one_line_error(capsys)


def test_bad_checkpoint_files_are_named_not_unpickled(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    for content, expect in [
        (b"", "the file is empty"),
        (np.random.default_rng(1).bytes(300), "it starts with bytes"),
        (b"PK\x03\x04 truncated", "not a valid nnref checkpoint"),
    ]:
        (out / "checkpoint.npz").write_bytes(content)
        assert main(_train(out, "--steps", "5", "--resume")) == 2
        line = _one_line_error(capsys)
        assert expect in line
        assert "allow_pickle" not in line
    np.savez(out / "checkpoint.npz", x=np.zeros(3))
    assert main(_train(out, "--steps", "5", "--resume")) == 2
    assert "without nnref's 'meta' entry" in _one_line_error(capsys)


def test_an_edited_checkpoint_is_one_line_naming_file_and_field(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train(out, "--steps", "3")) == 0
    ckpt = out / "checkpoint.npz"
    with np.load(ckpt) as z:
        arrays = {k: z[k] for k in z.files}
    for field, value in [("history", 5), ("history", [1, 2, 3]), ("step", "3")]:
        meta = json.loads(arrays["meta"].tobytes()) | {field: value}
        np.savez(ckpt, **arrays | {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
        capsys.readouterr()
        assert main(_train(out, "--steps", "6", "--resume")) == 2
        line = _one_line_error(capsys)
        assert line.startswith(f"nnref train: {ckpt}: meta field '{field}' ")


def test_divergence_stops_with_step_and_remedy(tmp_path, capsys) -> None:
    for every in ("100", "10"):  # logged or not, every step's loss is checked
        out = tmp_path / every
        argv = ["train", "mlp", "--lr", "1e6", "--steps", "30", "--log-every", every]
        assert main([*argv, "--out", str(out), "--no-progress"]) == 1
        line = _one_line_error(capsys)
        assert "the loss is nan at step 3" in line
        assert "lower the learning rate (--lr)" in line
        assert not (out / "metrics.json").exists()


def test_missing_scikit_learn_is_one_line(monkeypatch, capsys) -> None:
    for mod in ("sklearn", "sklearn.datasets", "sklearn.model_selection"):
        monkeypatch.setitem(sys.modules, mod, None)
    assert main(["errata", "--steps", "1"]) == 2
    assert "needs scikit-learn: pip install 'nnref[data]'" in _one_line_error(capsys)
    assert main(["train", "mlp", "--steps", "1"]) == 2
    assert "needs scikit-learn" in _one_line_error(capsys)


def test_missing_matplotlib_is_said_and_not_claimed(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "run"
    assert main(["train", "sigmoid-mse", "--steps", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped: matplotlib is not installed" in text
    assert "wrote metrics.csv, metrics.json, checkpoint.npz in" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz",
        "metrics.csv",
        "metrics.json",
    ]


def test_sigmoid_mse_writes_the_predictions_it_claims(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "sigmoid-mse", "--steps", "3", "--out", str(out)]) == 0
    assert "predictions.png" in capsys.readouterr().out
    assert (out / "predictions.png").is_file()


def test_header_describes_the_batches_actually_used(capsys) -> None:
    assert main(["train", "digits-kfold", "--steps", "1"]) == 0
    assert "on KFold batches of 65-66 (22 per epoch)" in capsys.readouterr().out
    assert main(["train", "sigmoid-mse", "--steps", "1"]) == 0
    assert "on the full batch of 120" in capsys.readouterr().out


def test_errata_text_shows_small_losses() -> None:
    from nnref.train.errata import format_row

    row = {
        "erratum": "adam-recreated-each-step",
        "recipe": "digits-kfold",
        "steps": 11000,
        "dataset": "digits",
        "bug": "b",
        "effect": "e",
        "fixed_loss": 1.1106e-06,
        "bug_loss": 5.5e-09,
        "fixed_test_accuracy": 0.98333,
        "bug_test_accuracy": 0.94444,
    }
    text = format_row(row)
    assert "last batch loss  fixed 1.11e-06  bug 5.5e-09" in text  # not 0.0000 / 0.0000
    assert "test accuracy    fixed 0.9833  bug 0.9444" in text


def test_interrupt_elsewhere_is_one_line_exit_130(monkeypatch, capsys) -> None:
    from nnref.train import errata

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(errata, "run_errata", interrupted)
    try:
        code = main(["errata"])
    except KeyboardInterrupt:  # escaping, it would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped main()")
    assert code == 130
    assert _one_line_error(capsys) == "nnref errata: interrupted"


def _nnref(*argv: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "nnref", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _signal_at_step_3(out: Path, sig: int) -> tuple[list[str], str, int]:
    """``nnref train mlp`` into ``out``, sent ``sig`` once step 3 is logged: its argv, its
    one stderr line (exit ``128 + sig``) and the step the checkpoint holds."""
    argv = ["train", "mlp", "--steps", "100000", "--log-every", "3", "--out", str(out)]
    p = _nnref(*argv, "--no-progress")
    for line in p.stdout:
        if line.startswith("step: 3,"):
            p.send_signal(sig)
            break
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert "run the same command with --resume to continue" in line
    step = int(line.split("holds step ")[1].split(":")[0])
    assert step >= 3
    return argv, line, step


def test_ctrl_c_keeps_the_checkpoint_and_says_resume(tmp_path) -> None:
    out = tmp_path / "run"
    argv, line, step = _signal_at_step_3(out, signal.SIGINT)
    assert "interrupted after step" in line
    # The checkpoint holds that step: --resume continues from it.
    q = _nnref(*argv[:3], str(step + 1), *argv[4:], "--no-progress", "--resume")
    out_text, err = q.communicate(timeout=120)
    assert q.returncode == 0, err
    assert f"resumed from {out / 'checkpoint.npz'} at step {step}" in out_text
    assert json.loads((out / "metrics.json").read_text())["steps_run"] == 1


def test_closed_stdout_is_not_a_traceback() -> None:
    p = _nnref("train", "sigmoid-mse", "--steps", "1")
    p.stdout.close()  # the reader goes away before nnref writes (nnref ... | head)
    err = p.stderr.read()
    p.wait(timeout=60)
    p.stderr.close()
    assert p.returncode == 141
    assert err == ""


def test_ctrl_c_while_the_summary_prints_says_the_run_is_kept(
    tmp_path, monkeypatch, capsys
) -> None:
    """A Ctrl-C during the final 'wrote ...' line once reached main() and read only
    'interrupted', as if the run were lost; every output is on disk by then."""
    import builtins

    real_print = builtins.print

    def ctrl_c_on_summary(*args, **kwargs):
        if args and str(args[0]).startswith("wrote "):
            raise KeyboardInterrupt
        real_print(*args, **kwargs)

    monkeypatch.setattr(builtins, "print", ctrl_c_on_summary)
    out = tmp_path / "run"
    argv = ["train", "sigmoid-mse", "--steps", "3", "--out", str(out), "--no-progress"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"interrupted after the run finished; every output is in {out}" in err
    assert (out / "checkpoint.npz").is_file()
    assert (out / "metrics.json").is_file()


def test_sigterm_ends_the_step_keeps_the_checkpoint_and_says_resume(tmp_path) -> None:
    """SIGTERM (``timeout``, ``kill``, a scheduler's preemption) once killed the run at once:
    no message, and every step since the last periodic checkpoint (up to 500) was lost."""
    out = tmp_path / "run"
    _, line, _ = _signal_at_step_3(out, signal.SIGTERM)
    assert line.startswith("nnref train: stopped by SIGTERM after step ")
    assert [p.name for p in out.iterdir()] == ["checkpoint.npz"]


def test_out_of_memory_is_one_line_with_the_remedy(tmp_path, capsys, monkeypatch) -> None:
    """A batch too large for the machine's memory (``--batch-size``) once ended in NumPy's
    traceback from inside max_pool2d_bwd; a resumed run's checkpoint is named."""
    from nnref.train import loop

    real = loop.loss_and_grads

    def out_of_memory_after_step_3(run, idx):
        if run.step >= 3:
            raise MemoryError("Unable to allocate 574. MiB for an array with shape (6000, 28)")
        return real(run, idx)

    monkeypatch.setattr(loop, "loss_and_grads", out_of_memory_after_step_3)
    out = tmp_path / "run"
    assert main(_train(out, "--steps", "6")) == 1
    assert _one_line_error(capsys) == (
        "nnref train: out of memory: Unable to allocate 574. MiB for an array with shape "
        "(6000, 28); a smaller --batch-size needs less (this run: 256)"
    )
    assert not out.exists() or not any(out.iterdir())
    monkeypatch.undo()
    assert main(_train(out, "--steps", "3")) == 0
    capsys.readouterr()
    monkeypatch.setattr(loop, "loss_and_grads", out_of_memory_after_step_3)
    assert main(_train(out, "--steps", "6", "--resume")) == 1
    assert _one_line_error(capsys).endswith(
        f"(this run: 256); with more memory free, the same command continues from {out}"
        f"{os.sep}checkpoint.npz"
    )


def test_out_of_memory_outside_a_step_does_not_blame_the_batch_size(
    tmp_path, capsys, monkeypatch
) -> None:
    """The evaluations go 1024 rows at a time whatever --batch-size is: the remedy named for a
    step's batch would not help there (review finding)."""
    from nnref.train import loop

    def evaluation_out_of_memory(*a, **k):
        raise MemoryError("Unable to allocate 2.00 GiB for an array with shape (1024, 524288)")

    monkeypatch.setattr(loop, "predict", evaluation_out_of_memory)
    out = tmp_path / "run"
    assert main(_train(out, "--steps", "2")) == 1
    assert _one_line_error(capsys) == (
        "nnref train: out of memory: Unable to allocate 2.00 GiB for an array with shape "
        f"(1024, 524288); with more memory free, the same command continues from {out}"
        f"{os.sep}checkpoint.npz"
    )


def test_a_bare_memory_error_still_says_what_failed(tmp_path, capsys, monkeypatch) -> None:
    """A MemoryError without a message (raised by hand, or by an allocator that says nothing)
    once printed "out of memory: ;" (an exception is always truthy)."""
    from nnref.train import loop

    def bare(run, idx):
        raise MemoryError

    monkeypatch.setattr(loop, "loss_and_grads", bare)
    assert main(_train(tmp_path / "run", "--steps", "2")) == 1
    assert _one_line_error(capsys) == (
        "nnref train: out of memory: an allocation failed; a smaller --batch-size needs less "
        "(this run: 256)"
    )


def test_a_path_the_locale_cannot_encode_is_printed_not_a_traceback(tmp_path, monkeypatch) -> None:
    """A non-UTF-8 file name (Python keeps its bytes as surrogates) under a UTF-8 locale, whose
    stdout refuses surrogates: the final "wrote ... in DIR" line once raised UnicodeEncodeError
    after the run; it is printed escaped, as stderr does."""
    import io

    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    out = tmp_path / "run\udcff"
    assert main(["train", "sigmoid-mse", "--steps", "3", "--out", str(out)]) == 0
    assert main(["train", "sigmoid-mse", "--steps", "4", "--out", str(out), "--resume"]) == 0
    stdout.flush()
    text = stdout.buffer.getvalue().decode()
    assert f"resumed from {tmp_path}{os.sep}run\\udcff{os.sep}checkpoint.npz at step 3" in text
    assert f"checkpoint.npz in {tmp_path}{os.sep}run\\udcff\n" in text
    assert stdout.errors == "strict"  # the caller's stream as it was (main may be embedded)
