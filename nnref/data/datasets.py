"""Datasets: scikit-learn's bundled digits (default, no download), MNIST from local files, and
the two-feature toy set of the NumPy lesson, generated deterministically.

MNIST is read from ``mnist.npz`` (Keras' format, loaded with ``allow_pickle=False``) or from the
four IDX files (gzipped or not). Every header is validated against the file size before anything
is allocated; truncated, oversized or malformed files raise ``ValueError`` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
    name: str
    x_train: np.ndarray  # (N, H, W, C) float64 in [0, 1] for images; (N, D) for the toy set
    y_train: np.ndarray  # int64 class indices
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_digits(*, test_size: float = 0.2, seed: int = 1) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, bundled with the package), scaled to [0, 1] and
    split as the lesson does (``train_test_split(test_size=0.2, random_state=1)``)."""
    try:
        from sklearn.datasets import load_digits as sk_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
        raise ImportError("the digits dataset needs scikit-learn: pip install 'nnref[data]'") from e
    d = sk_digits()
    x = (d.data / 16.0).reshape(-1, 8, 8, 1)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed)
    return Dataset("digits", xtr, ytr, xte, yte, 10)


def toy_two_feature(*, n: int = 150, seed: int = 0) -> Dataset:
    """The NumPy lesson's binary two-feature set (its CSV cannot be downloaded here): two
    Gaussian blobs of ``n`` points in all (``n >= 3``, so both splits hold a point), labels 0/1,
    20% held out. Deterministic in ``seed`` (a non-negative int)."""
    for name, v, lo in (("n", n, 3), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise ValueError(f"toy_two_feature: {name!r} must be an integer >= {lo}, got {v!r}")
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    centers = np.array([[-1.0, -1.0], [1.0, 1.0]])
    x = centers[y] + rng.standard_normal((n, 2)) * 0.6
    perm = rng.permutation(n)
    cut = round(n * 0.8)
    tr, te = perm[:cut], perm[cut:]
    return Dataset("toy", x[tr], y[tr], x[te], y[te], 2)


# --------------------------------------------------------------------------- MNIST

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
#: Largest IDX payload accepted (MNIST's training images are 47 MB).
MAX_IDX_BYTES = 512 * 1024 * 1024


def _read_bytes(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                data = f.read(MAX_IDX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: not a valid gzip file ({e})") from None
    else:
        with open(path, "rb") as f:
            data = f.read(MAX_IDX_BYTES + 1)
    if len(data) > MAX_IDX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_IDX_BYTES} bytes, refusing to load")
    return data


def parse_idx(data: bytes, *, name: str = "<bytes>", expect_ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file (unsigned-byte data only, as MNIST) into a uint8 array.

    The magic number must be ``0x0000 08 nd``; the dimensions are read and their product checked
    against the payload length before the array is built (no partial or oversized loads).
    """
    if len(data) < 4:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(
            f"{name}: wrong IDX magic number 0x{data[:4].hex()} (expected 0x000008 followed by "
            "the number of dimensions; only unsigned-byte IDX files are supported)"
        )
    if ndim == 0 or (expect_ndim is not None and ndim != expect_ndim):
        raise ValueError(f"{name}: IDX file has {ndim} dimensions, expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header} bytes, got {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = 1
    for d in dims:
        count *= d
    if count > MAX_IDX_BYTES:
        raise ValueError(
            f"{name}: IDX header declares {dims} = {count} bytes, over the {MAX_IDX_BYTES} limit"
        )
    if len(data) - header != count:
        raise ValueError(
            f"{name}: IDX header declares dimensions {dims} ({count} bytes of data) but the file "
            f"holds {len(data) - header} bytes after the header (truncated or malformed)"
        )
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims).copy()


def _check_mnist(arrays: dict[str, np.ndarray], source: str) -> Dataset:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{source}: x_{split} has shape {x.shape}, expected (N, 28, 28)")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{source}: y_{split} has shape {y.shape}, expected ({x.shape[0]},)")
        if x.dtype != np.uint8 or y.dtype.kind not in "iu":
            raise ValueError(
                f"{source}: x_{split}/y_{split} dtypes {x.dtype}/{y.dtype}, expected uint8/integers"
            )
        if y.size and (y.min() < 0 or y.max() > 9):
            raise ValueError(
                f"{source}: y_{split} has labels outside 0..9 (min {y.min()}, max {y.max()})"
            )
    return Dataset(
        "mnist",
        (arrays["x_train"] / 255.0).reshape(-1, 28, 28, 1),
        arrays["y_train"].astype(np.int64),
        (arrays["x_test"] / 255.0).reshape(-1, 28, 28, 1),
        arrays["y_test"].astype(np.int64),
        10,
    )


#: The first bytes of a zip archive (an ``.npz``): a local file header, or an empty archive's
#: end-of-directory record.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def sniff_npz(path: Path, what: str = ".npz file") -> None:
    """Refuse ``path`` unless it starts like a zip archive, saying what it looks like instead.

    ``np.load`` takes any other file for a pickle and answers with advice about
    ``allow_pickle``, which misleads for an empty, text or random file.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise ValueError(f"{path}: cannot be read as an {what} ({e.strerror or e})") from None
    if head[:4] in ZIP_MAGIC:
        return
    if not head:
        kind = "the file is empty"
    elif head.startswith(b"\x93NUMPY"):
        kind = "it is a single .npy array, not an .npz archive"
    elif all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        kind = f"it holds text ({head[:24].decode()!r}...)"
    else:
        kind = f"it starts with bytes {head[:8].hex(' ')}"
    raise ValueError(f"{path}: not an {what} (an .npz is a zip archive; {kind})")


def _load_npz(path: Path) -> Dataset:
    sniff_npz(path, "MNIST .npz file")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            names = set(z.files)
            arrays = {k: z[k] for k in IDX_FILES if k in names}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{path}: holds pickled objects, which nnref never loads") from None
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    missing = [k for k in IDX_FILES if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing} (has {sorted(names)})")
    return _check_mnist(arrays, str(path))


def _find_idx(directory: Path, stem: str) -> Path | None:
    for cand in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        p = directory / cand
        if p.is_file():
            return p
    return None


def mnist_search_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where :func:`load_mnist` looks: ``data_dir`` if given, else Keras' cache
    (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``)."""
    if data_dir is not None:
        return [Path(data_dir)]
    keras_home = os.environ.get("KERAS_HOME", str(Path.home() / ".keras"))
    return [Path(keras_home) / "datasets"]


def load_mnist(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """MNIST from local files: ``mnist.npz`` or the four IDX files (optionally ``.gz``).

    Raises ``FileNotFoundError`` saying where to put the files when none are found, and
    ``ValueError`` when ``data_dir`` is not a directory or a file is not what its name says.
    """
    if data_dir is not None:
        d = Path(data_dir)
        if not d.exists():
            raise FileNotFoundError(f"load_mnist: data directory {d} does not exist")
        if not d.is_dir():
            hint = f" (give its directory, {d.parent})" if d.name == "mnist.npz" else ""
            raise ValueError(f"load_mnist: {d} is a file, not a directory{hint}")
    dirs = mnist_search_dirs(data_dir)
    for d in dirs:
        npz = d / "mnist.npz"
        if npz.exists() and not npz.is_file():
            raise ValueError(f"{npz}: not a regular file")
        if npz.is_file():
            return _load_npz(npz)
        paths = {k: _find_idx(d, stem) for k, stem in IDX_FILES.items()}
        if all(paths.values()):
            arrays = {
                k: parse_idx(_read_bytes(p), name=str(p), expect_ndim=3 if k.startswith("x") else 1)
                for k, p in paths.items()
            }
            return _check_mnist(arrays, str(d))
        found = [k for k, p in paths.items() if p]
        if found:
            missing = [IDX_FILES[k] for k, p in paths.items() if not p]
            raise FileNotFoundError(
                f"{d}: incomplete MNIST IDX set, missing {missing} (.gz allowed)"
            )
    where = ", ".join(str(d) for d in dirs)
    elsewhere = (
        ""
        if data_dir is not None
        else ", or give another directory (nnref train --data-dir DIR, load_mnist(data_dir))"
    )
    raise FileNotFoundError(
        f"MNIST not found in {where}. Put Keras' mnist.npz there, or the four IDX files "
        f"({', '.join(IDX_FILES.values())}, optionally gzipped){elsewhere}. "
        "The default dataset, digits, needs no files."
    )


def load_dataset(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """``digits``, ``mnist`` (from ``data_dir``, see :func:`load_mnist`) or ``toy``."""
    if name not in ("digits", "mnist", "toy"):
        raise ValueError(f"load_dataset: unknown dataset {name!r}: choose digits, mnist or toy")
    if data_dir is not None and name != "mnist":
        raise ValueError(f"load_dataset: data_dir applies to 'mnist' only, not {name!r}")
    if name == "digits":
        return load_digits()
    if name == "mnist":
        return load_mnist(data_dir)
    return toy_two_feature()
