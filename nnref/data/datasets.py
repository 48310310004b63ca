"""Datasets: scikit-learn's bundled digits (default, no download), MNIST from local files, and
the two-feature toy set of the NumPy lesson, generated deterministically.

MNIST is read from ``mnist.npz`` (Keras' format, loaded with ``allow_pickle=False``) or from the
four IDX files (gzipped or not). Every header (an IDX header, or each ``.npz`` member's ``.npy``
header) is validated against the expected layout, a size cap and the file size before anything
is allocated or decompressed; truncated, oversized, empty or malformed files raise
``ValueError`` naming the file and the array.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from nnref import _memory
from nnref._validate import is_int


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
        if not is_int(v) or v < lo:
            raise ValueError(f"toy_two_feature: {name!r} must be an integer >= {lo}, got {v!r}")
    rng = np.random.default_rng(seed)
    centers = np.array([[-1.0, -1.0], [1.0, 1.0]])
    try:
        y = (np.arange(n) % 2).astype(np.int64)
        x = centers[y] + rng.standard_normal((n, 2)) * 0.6
        perm = rng.permutation(n)
    except _memory.TOO_LARGE as e:
        raise _memory.too_large("toy_two_feature", f"'n' {n}", "inputs", (n, 2), np.float64) from e
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
#: Largest IDX payload, or ``.npz`` member's array, accepted (MNIST's training images are 47 MB).
MAX_IDX_BYTES = 512 * 1024 * 1024


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (decompressed for ``.gz``), at most the cap; ``ValueError`` naming the
    file when it cannot be read or decompressed (a bare ``OSError`` would read as a failed
    write of the training outputs)."""
    try:
        with open(path, "rb") as raw:
            if not path.name.endswith(".gz"):
                data = raw.read(MAX_IDX_BYTES + 1)
            else:
                try:
                    with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                        data = f.read(MAX_IDX_BYTES + 1)
                except (gzip.BadGzipFile, EOFError, zlib.error) as e:
                    raise ValueError(f"{path}: not a valid gzip file ({e})") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
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


def _check_mnist_layout(
    layout: dict[str, tuple[tuple[int, ...], np.dtype]], where: dict[str, str]
) -> None:
    """Refuse MNIST arrays whose shapes or dtypes (``layout``, known before any data is loaded)
    are not ``(N, 28, 28)`` uint8 images with ``(N,)`` integer labels, ``N >= 1``; ``where``
    names each array in messages (its file and name)."""
    for split, split_name in (("train", "training"), ("test", "test")):
        (xs, xd), (ys, yd) = layout[f"x_{split}"], layout[f"y_{split}"]
        wx, wy = where[f"x_{split}"], where[f"y_{split}"]
        if len(xs) != 3 or xs[1:] != (28, 28):
            raise ValueError(f"{wx} has shape {xs}, expected (N, 28, 28)")
        if xd != np.uint8:
            raise ValueError(f"{wx} has dtype {xd}, expected uint8")
        if xs[0] == 0:
            raise ValueError(
                f"{wx} holds no images (shape {xs}): the {split_name} set needs at least one"
            )
        if ys != xs[:1]:
            raise ValueError(f"{wy} has shape {ys}, expected ({xs[0]},), a label per image")
        if yd.kind not in "iu":
            raise ValueError(f"{wy} has dtype {yd}, expected integer labels")


def _mnist_dataset(arrays: dict[str, np.ndarray], where: dict[str, str]) -> Dataset:
    """The dataset from the loaded arrays, their layout and labels checked."""
    _check_mnist_layout({k: (a.shape, a.dtype) for k, a in arrays.items()}, where)
    for key in ("y_train", "y_test"):
        y = arrays[key]
        if y.min() < 0 or y.max() > 9:
            raise ValueError(f"{where[key]} has labels outside 0..9 (min {y.min()}, max {y.max()})")
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


class NpyHeader(NamedTuple):
    """What an ``.npz`` member's ``.npy`` header declares, read before any of its data."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __str__(self) -> str:
        return f"{self.dtype}{self.shape}"


#: Errors of a damaged zip archive or member (``NotImplementedError``: an unsupported
#: compression method; ``RuntimeError``: an encrypted member).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)


class NpzArchive:
    """An open ``.npz`` whose members' headers are read (:attr:`headers`, by array name) and
    within :data:`MAX_IDX_BYTES`, but whose data is not: compare the headers with the layout
    expected, then :meth:`load` the arrays."""

    def __init__(
        self, path: Path, zf: zipfile.ZipFile, headers: dict[str, NpyHeader], invalid: str
    ) -> None:
        self.path, self._zip, self.headers, self._invalid = path, zf, headers, invalid

    def load(self, name: str) -> np.ndarray:
        """The array ``name`` (never unpickled; its header was checked when opened)."""
        try:
            with self._zip.open(f"{name}.npy") as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except (*_ZIP_ERRORS, ValueError) as e:
            raise ValueError(
                f"{self.path}: {self._invalid} ({name}: {type(e).__name__}: {e})"
            ) from None


def _npy_header(path: Path, member: IO[bytes], name: str, size: int) -> NpyHeader:
    """Read ``member``'s ``.npy`` header (``size``: its uncompressed size) and refuse pickled
    objects, arrays over :data:`MAX_IDX_BYTES` and data of another length than declared."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(member)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except ValueError as e:
        raise ValueError(f"{path}: {name} is not a valid .npy array ({e})") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: {name} holds pickled objects, which nnref never loads")
    nbytes = math.prod(shape) * dtype.itemsize
    header = NpyHeader(shape, dtype)
    if nbytes > MAX_IDX_BYTES:
        raise ValueError(
            f"{path}: {name} declares {header} = {nbytes} bytes, over the {MAX_IDX_BYTES} limit"
        )
    held = size - member.tell()
    if held != nbytes:
        raise ValueError(
            f"{path}: {name} declares {header} ({nbytes} bytes of data) but holds {held} bytes "
            "after its header (truncated or malformed)"
        )
    return header


@contextmanager
def open_npz(
    path: Path, what: str, *, invalid: str = "not a readable .npz file"
) -> Iterator[NpzArchive]:
    """Open the ``.npz`` at ``path`` reading only its members' headers (see
    :class:`NpzArchive`); ``what`` names the file's kind and ``invalid`` a damaged one in
    messages. Refuses (``ValueError`` naming the file and the array) files of another kind,
    members that are not ``.npy`` arrays, pickled objects and oversized or truncated arrays
    before any data is decompressed.
    """
    sniff_npz(path, what)
    with ExitStack() as stack:
        headers: dict[str, NpyHeader] = {}
        try:
            zf = stack.enter_context(zipfile.ZipFile(stack.enter_context(open(path, "rb"))))
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                if info.is_dir() or name == info.filename:
                    raise ValueError(f"{path}: member {info.filename!r} is not an .npy array")
                if name in headers:
                    raise ValueError(f"{path}: member {info.filename!r} appears twice")
                with zf.open(info) as member:
                    headers[name] = _npy_header(path, member, name, info.file_size)
        except _ZIP_ERRORS as e:
            raise ValueError(f"{path}: {invalid} ({type(e).__name__}: {e})") from None
        yield NpzArchive(path, zf, headers, invalid)


def _load_npz(path: Path) -> Dataset:
    with open_npz(path, "MNIST .npz file") as z:
        missing = [k for k in IDX_FILES if k not in z.headers]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing} (has {sorted(z.headers)})")
        where = {k: f"{path}: {k}" for k in IDX_FILES}
        _check_mnist_layout({k: (z.headers[k].shape, z.headers[k].dtype) for k in IDX_FILES}, where)
        arrays = {k: z.load(k) for k in IDX_FILES}
    return _mnist_dataset(arrays, where)


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
        try:
            exists, is_dir = d.exists(), d.is_dir()
        except OSError as e:  # pathlib lets ENAMETOOLONG, EACCES and others through
            raise ValueError(
                f"load_mnist: data directory {d} cannot be checked ({e.strerror or e})"
            ) from None
        if not exists:
            raise FileNotFoundError(f"load_mnist: data directory {d} does not exist")
        if not is_dir:
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
            return _mnist_dataset(arrays, {k: f"{p}: {k}" for k, p in paths.items()})
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
