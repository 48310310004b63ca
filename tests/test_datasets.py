"""Dataset loaders: digits, the toy set, and MNIST from files the tests write (npz and IDX)."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest

from nnref.data import datasets, load_dataset, load_digits, load_mnist, parse_idx, toy_two_feature
from nnref.data.datasets import IDX_FILES


def idx_bytes(a: np.ndarray, magic: bytes | None = None) -> bytes:
    head = magic if magic is not None else bytes([0, 0, 0x08, a.ndim])
    return head + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def small_mnist(rng, n_train=6, n_test=4) -> dict[str, np.ndarray]:
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def write_idx(d, arrays, gz=False) -> None:
    for k, stem in IDX_FILES.items():
        data = idx_bytes(arrays[k])
        if gz:
            (d / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (d / stem).write_bytes(data)


def test_digits_split_as_the_lesson() -> None:
    d = load_digits()
    assert d.x_train.shape == (1437, 8, 8, 1)
    assert d.x_test.shape == (360, 8, 8, 1)
    assert d.x_train.min() >= 0
    assert d.x_train.max() <= 1
    assert d.num_classes == 10


def test_toy_is_deterministic() -> None:
    a, b = toy_two_feature(seed=3), toy_two_feature(seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.shape == (120, 2)
    assert set(np.unique(a.y_train)) == {0, 1}


@pytest.mark.parametrize("fmt", ["npz", "idx", "idx.gz"])
def test_mnist_loads_from_files(fmt, tmp_path, rng) -> None:
    arrays = small_mnist(rng)
    if fmt == "npz":
        np.savez(tmp_path / "mnist.npz", **arrays)
    else:
        write_idx(tmp_path, arrays, gz=fmt.endswith("gz"))
    d = load_mnist(tmp_path)
    assert d.x_train.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(d.x_train[..., 0], arrays["x_train"] / 255.0)
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])


def test_mnist_from_keras_cache(tmp_path, rng, monkeypatch) -> None:
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", **small_mnist(rng))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert load_dataset("mnist").x_test.shape == (4, 28, 28, 1)


def test_mnist_missing_says_where(tmp_path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"MNIST not found in .*Put Keras' mnist.npz there, or the four IDX files",
    ):
        load_mnist(tmp_path)
    (tmp_path / IDX_FILES["x_train"]).write_bytes(idx_bytes(np.zeros((1, 28, 28))))
    with pytest.raises(FileNotFoundError, match="incomplete MNIST IDX set, missing"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        pytest.param(lambda b: b[:-5], "holds 7835 bytes after the header", id="truncated"),
        pytest.param(
            lambda b: b"\x00\x00\x0d\x03" + b[4:],
            "wrong IDX magic number 0x00000d03",
            id="float-magic",
        ),
        pytest.param(
            lambda b: b"\x01\x00\x08\x03" + b[4:], "wrong IDX magic number", id="bad-magic"
        ),
        pytest.param(lambda b: b[:2], "truncated IDX header", id="tiny"),
        pytest.param(
            lambda b: b[:4] + struct.pack(">3I", 10**7, 28, 28) + b[16:],
            r"\(10000000, 28, 28\) = 7840000000 bytes, over the",
            id="oversize-header",
        ),
        pytest.param(
            lambda b: b[:4] + struct.pack(">3I", 100000, 28, 28) + b[16:],
            "declares dimensions \\(100000, 28, 28\\)",
            id="header-larger-than-file",
        ),
        pytest.param(lambda b: b[:8], r"3 dimensions need 16 bytes", id="header-cut"),
    ],
)
def test_malformed_idx_rejected(mutate, match, tmp_path, rng) -> None:
    arrays = small_mnist(rng, n_train=10)
    write_idx(tmp_path, arrays)
    p = tmp_path / IDX_FILES["x_train"]
    p.write_bytes(mutate(p.read_bytes()))
    with pytest.raises(ValueError, match=match):
        load_mnist(tmp_path)


def test_wrong_dimensions_and_labels_rejected(tmp_path, rng) -> None:
    arrays = small_mnist(rng)
    arrays["x_train"] = rng.integers(0, 255, (6, 14, 14), dtype=np.uint8)
    write_idx(tmp_path, arrays)
    with pytest.raises(
        ValueError, match=r"x_train has shape \(6, 14, 14\), expected \(N, 28, 28\)"
    ):
        load_mnist(tmp_path)
    arrays = small_mnist(rng)
    arrays["y_test"][0] = 12
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match=r"labels outside 0\.\.9"):
        load_mnist(tmp_path)


def test_pickled_or_corrupt_npz_rejected(tmp_path, rng) -> None:
    arrays = small_mnist(rng)
    bad = dict(arrays)
    bad["y_train"] = np.array([{"evil": 1}] * 6, dtype=object)
    np.savez(tmp_path / "mnist.npz", **bad)
    with pytest.raises(ValueError, match="pickled objects"):
        load_mnist(tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"not a readable \.npz file"):
        load_mnist(tmp_path)
    np.savez(tmp_path / "mnist.npz", x_train=arrays["x_train"])
    with pytest.raises(ValueError, match="missing arrays"):
        load_mnist(tmp_path)


def npz_declaring(path, arrays, name, shape, compression=zipfile.ZIP_STORED) -> None:
    """Write ``arrays`` as an .npz whose member ``name`` declares ``shape`` in its .npy header
    while holding its real data (an edited or hostile file)."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for k, a in arrays.items():
            buf = io.BytesIO()
            if k == name:
                header = {"descr": a.dtype.str, "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(buf, header)
                buf.write(a.tobytes())
            else:
                np.save(buf, a)
            z.writestr(f"{k}.npy", buf.getvalue())


@pytest.mark.parametrize(
    ("name", "shape", "says"),
    [
        pytest.param(
            "x_train",
            (2**31, 28, 28),
            r"x_train declares uint8\(2147483648, 28, 28\) = 1683627180032 bytes, over the "
            "536870912 limit",
            id="huge-shape-in-a-small-file",
        ),
        pytest.param(
            "x_test",
            (5, 28, 28),
            r"x_test declares uint8\(5, 28, 28\) \(3920 bytes of data\) but holds 3136 bytes",
            id="fewer-images-than-held",
        ),
        pytest.param(
            "y_train", (6, 2), r"y_train has shape \(6, 2\), expected \(6,\)", id="labels-2d"
        ),
    ],
)
def test_npz_headers_are_checked_before_any_data_is_read(
    name, shape, says, tmp_path, rng, monkeypatch
) -> None:
    def never(*args, **kwargs):
        raise AssertionError("array data read before its header was checked")

    monkeypatch.setattr(np.lib.format, "read_array", never)
    arrays = small_mnist(rng)
    if name == "y_train":  # the data must match the declared shape: only the layout is wrong
        arrays["y_train"] = np.repeat(arrays["y_train"], 2)
    npz_declaring(tmp_path / "mnist.npz", arrays, name, shape)
    with pytest.raises(ValueError, match=says) as e:
        load_mnist(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'mnist.npz'}: {name} ")


def test_compressed_npz_over_the_cap_is_refused_before_decompressing(
    tmp_path, rng, monkeypatch
) -> None:
    arrays = small_mnist(rng, n_train=30)  # 23520 bytes of images, deflated to a few hundred
    arrays["x_train"][:] = 0
    np.savez_compressed(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 20000)
    assert (tmp_path / "mnist.npz").stat().st_size < datasets.MAX_IDX_BYTES
    inflated = []
    real_open = zipfile.ZipFile.open

    def counting_open(self, name, *args, **kwargs):
        f = real_open(self, name, *args, **kwargs)
        real_read = f.read
        f.read = lambda n=-1: inflated.append(len(b := real_read(n))) or b
        return f

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    with pytest.raises(ValueError, match=r"x_train declares uint8\(30, 28, 28\) = 23520 bytes"):
        load_mnist(tmp_path)
    assert sum(inflated) < 1000  # the .npy headers only


@pytest.mark.parametrize("fmt", ["npz", "idx"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_without_images_is_refused_naming_the_file(fmt, split, tmp_path, rng) -> None:
    arrays = small_mnist(rng, **{f"n_{split}": 0})
    if fmt == "npz":
        np.savez(tmp_path / "mnist.npz", **arrays)
        where = tmp_path / "mnist.npz"
    else:
        write_idx(tmp_path, arrays)
        where = tmp_path / IDX_FILES[f"x_{split}"]
    with pytest.raises(ValueError, match="holds no images") as e:
        load_mnist(tmp_path)
    name = "training" if split == "train" else "test"
    assert str(e.value) == (
        f"{where}: x_{split} holds no images (shape (0, 28, 28)): the {name} set needs at least one"
    )


def test_parse_idx_expected_rank() -> None:
    with pytest.raises(ValueError, match="has 1 dimensions, expected 3"):
        parse_idx(idx_bytes(np.zeros(4)), expect_ndim=3)
    np.testing.assert_array_equal(
        parse_idx(idx_bytes(np.arange(6).reshape(2, 3))), np.arange(6).reshape(2, 3)
    )


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "the file is empty"),
        (b"x_train,y_train\n0,1\n", "it holds text ('x_train,y_train"),
        (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}", "a single .npy array, not an .npz archive"),
        (bytes(range(200, 256)), "it starts with bytes c8 c9 ca cb cc cd ce cf"),
    ],
)
def test_a_file_of_another_kind_is_named_not_called_pickled(content, says, tmp_path) -> None:
    (tmp_path / "mnist.npz").write_bytes(content)
    with pytest.raises(ValueError, match=r"not an MNIST \.npz file") as e:
        load_mnist(tmp_path)
    assert says in str(e.value)
    assert "pickled" not in str(e.value)


def test_data_dir_of_the_wrong_kind(tmp_path) -> None:
    npz = tmp_path / "mnist.npz"
    npz.write_bytes(b"")
    with pytest.raises(ValueError, match=r"is a file, not a directory \(give its directory, "):
        load_mnist(npz)
    with pytest.raises(FileNotFoundError, match=r"data directory .* does not exist"):
        load_mnist(tmp_path / "nowhere")
    npz.unlink()
    npz.mkdir()
    with pytest.raises(ValueError, match=r"mnist\.npz: not a regular file"):
        load_mnist(tmp_path)
    # An explicit directory without the files is not told to "pass --data-dir".
    npz.rmdir()
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(tmp_path)
    assert "--data-dir" not in str(e.value)


def test_an_over_long_data_dir_is_a_value_error(tmp_path) -> None:
    d = tmp_path / ("x" * 300)
    with pytest.raises(ValueError, match=r"cannot be checked \(File name too long\)"):
        load_mnist(d)


def test_data_dir_is_refused_for_other_datasets(tmp_path) -> None:
    with pytest.raises(ValueError, match="data_dir applies to 'mnist' only, not 'toy'"):
        load_dataset("toy", data_dir=tmp_path)


def test_corrupt_gzip_idx_is_a_value_error(tmp_path, rng) -> None:
    arrays = small_mnist(rng)
    for key, stem in IDX_FILES.items():
        (tmp_path / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(arrays[key])))
    bad = tmp_path / (IDX_FILES["y_test"] + ".gz")
    data = bytearray(bad.read_bytes())
    data[10] = 0xFF  # the deflate stream's first block type: zlib.error, not an OSError
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a valid gzip file"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(("kw", "name"), [({"n": 2}, "n"), ({"seed": -1}, "seed")])
def test_toy_arguments_are_validated(kw, name) -> None:
    with pytest.raises(ValueError, match=f"toy_two_feature: '{name}' must be an integer"):
        toy_two_feature(**kw)


@pytest.mark.parametrize("gz", [False, True])
def test_an_unreadable_idx_file_is_a_value_error_naming_it(gz, tmp_path, rng, monkeypatch) -> None:
    """A file nnref may not read (its permissions, an I/O error) raised a bare OSError, which
    ``nnref train`` reported as "could not write the outputs", exit 1; gzipped, it was called
    "not a valid gzip file"."""
    write_idx(tmp_path, small_mnist(rng), gz=gz)
    real_open = open

    def no_permission(path, *args, **kwargs):
        if "labels" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "open", no_permission, raising=False)
    name = IDX_FILES["y_train"] + (".gz" if gz else "")
    with pytest.raises(ValueError, match=f"{name}: cannot be read \\(Permission denied\\)$"):
        load_mnist(tmp_path)
