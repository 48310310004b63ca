"""max_pool2d: naive vs fast, TF's tie/NaN/-inf routing pinned, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nnref
from nnref.check.compare import assert_close

CASES = [
    pytest.param(h, w, k, s, pad, id=f"{h}x{w}-k{k}-s{s}-{pad}")
    for h, w, k, s, pad in itertools.product(
        [4, 5, 6, 7], [5, 6], [2, 3], [1, 2, 3], ["SAME", "VALID"]
    )
]
FLOATS = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


@pytest.mark.parametrize(("h", "w", "k", "s", "pad"), CASES)
def test_fast_matches_naive_random_and_ties(h, w, k, s, pad, rng) -> None:
    for x in (
        rng.standard_normal((2, h, w, 2)),
        np.round(rng.standard_normal((2, h, w, 2))),
        np.ones((1, h, w, 2)),
    ):
        y, res = nnref.max_pool2d_fwd(x, ksize=k, strides=s, padding=pad)
        yn, resn = nnref.max_pool2d_naive_fwd(x, ksize=k, strides=s, padding=pad)
        np.testing.assert_array_equal(y, yn)
        dy = rng.standard_normal(y.shape)
        assert_close(
            nnref.max_pool2d_bwd(res, dy)[0],
            nnref.max_pool2d_naive_bwd(resn, dy)[0],
            rtol=1e-15,
            what="dx",
        )


@pytest.mark.tf
@pytest.mark.parametrize(("h", "w", "k", "s", "pad"), CASES)
@pytest.mark.parametrize("dt", FLOATS)
def test_routing_matches_tf_on_ties(h, w, k, s, pad, dt, rng) -> None:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    for x in (np.ones((1, h, w, 2), dt), np.round(rng.standard_normal((2, h, w, 2))).astype(dt)):
        y, res = nnref.max_pool2d_fwd(x, ksize=k, strides=s, padding=pad)
        dy = rng.standard_normal(y.shape).astype(dt)
        yt, (gt,) = tape_vjp(
            lambda a: tf.nn.max_pool2d(a, k, s, pad), (x,), dy
        )  # tf.constant inside
        np.testing.assert_array_equal(y, yt)
        g = nnref.max_pool2d_bwd(res, dy)[0]
        if s >= k:  # no overlap: each cell gets at most one gradient, so exact
            np.testing.assert_array_equal(g, gt)
        else:  # overlapping windows accumulate in a different order
            assert_close(g, gt, what=f"dx {dt.__name__}")


def test_pinned_windows() -> None:
    def route(vals):
        x = np.array(vals, dtype=np.float64).reshape(1, 2, 2, 1)
        y, res = nnref.max_pool2d_fwd(x, ksize=2, strides=2)
        return y.ravel()[0], nnref.max_pool2d_bwd(res, np.ones((1, 1, 1, 1)))[0].reshape(2, 2)

    y, g = route([1, 3, 3, 2])
    assert y == 3
    np.testing.assert_array_equal(g, [[0, 1], [0, 0]])
    y, g = route([np.nan, 1, 2, 0])  # forward skips NaN, gradient stays on the NaN
    assert y == 2
    np.testing.assert_array_equal(g, [[1, 0], [0, 0]])
    y, g = route([-np.inf] * 4)  # lowest finite value, gradient to the first cell
    assert y == np.finfo(np.float64).min
    np.testing.assert_array_equal(g, [[1, 0], [0, 0]])
    y, g = route([np.nan] * 4)
    assert y == np.finfo(np.float64).min
    y, g = route([-5, -2, -3, -4])  # all negative: the pad never wins
    assert y == -2


@pytest.mark.parametrize(("path", "k"), [("_pairs_fwd", 2), ("_unpadded_fwd", 3)])
def test_fast_and_general_paths_route_identically(path, k, rng, monkeypatch) -> None:
    """No padding and no NaN takes a fast path (2x2 tiles: in pairs; other windows: the running
    maximum); a NaN forces the general path, which must route every other window identically."""
    from nnref.ops import pool

    taken = []
    fast = getattr(pool, path)
    monkeypatch.setattr(pool, path, lambda *a: taken.append(fast(*a)) or taken[-1])
    x = np.round(rng.standard_normal((2, 6, 6, 3)))
    x[0, 0, 0, 0] = -np.inf
    x[1, :2, :2, 1] = -np.inf
    y, res = nnref.max_pool2d_fwd(x, ksize=k, strides=k)
    xg = x.copy()
    xg[1, 4, 4, 2] = np.nan  # in the last window only
    yg, resg = nnref.max_pool2d_fwd(xg, ksize=k, strides=k)
    assert taken == [True, False]
    dy = rng.standard_normal(y.shape)
    g, gg = nnref.max_pool2d_bwd(res, dy)[0], nnref.max_pool2d_bwd(resg, dy)[0]
    clean = 4 // k  # output rows above the NaN's window
    np.testing.assert_array_equal(y[:, :clean], yg[:, :clean])
    np.testing.assert_array_equal(g[:, : clean * k], gg[:, : clean * k])
    yn, resn = nnref.max_pool2d_naive_fwd(x, ksize=k, strides=k)
    np.testing.assert_array_equal(y, yn)
    np.testing.assert_array_equal(g, nnref.max_pool2d_naive_bwd(resn, dy)[0])


@pytest.mark.parametrize("dt", FLOATS)
def test_pairs_give_the_running_maximums_bits(dt, rng, monkeypatch) -> None:
    """2x2 tiles in pairs against the running maximum over the same windows: ties (values on a
    coarse grid), -0.0 beside +0.0, -inf windows, a non-contiguous input; chunks of one image,
    so every step boundary is crossed."""
    from nnref.ops import pool

    monkeypatch.setattr(pool, "_CHUNK_BYTES", 1)
    x = np.round(rng.standard_normal((5, 8, 10, 7)) * 2) / 2
    x[rng.random(x.shape) < 0.2] = -0.0
    x[rng.random(x.shape) < 0.1] = 0.0
    x[0, :2, :2] = -np.inf
    x = np.asarray(x, dt)[:, :, :, ::-1]  # negative channel stride
    ys, choices = [], []
    for fast in ("pairs", "running"):
        y = np.empty((5, 4, 5, 7), dt)
        choice = np.empty((5, 4, 5, 7), np.int8)
        if fast == "pairs":
            assert pool._pairs_fwd(x, y, choice)
        else:
            assert pool._unpadded_fwd(x, (2, 2), (2, 2), y, choice)
        ys.append(y.tobytes())
        choices.append(choice.tobytes())
    assert ys[0] == ys[1]
    assert choices[0] == choices[1]
    assert nnref.max_pool2d_fwd(x, ksize=2, strides=2)[0].tobytes() == ys[0]


def test_same_window_of_only_padding_and_minus_inf() -> None:
    x = np.full((1, 3, 3, 1), -np.inf, np.float32)
    y = nnref.max_pool2d(x, ksize=2, strides=2, padding="SAME")
    assert y.shape == (1, 2, 2, 1)
    assert (y == np.finfo(np.float32).min).all()


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_nan_and_inf_windows_match_tf(dt) -> None:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = np.array(
        [[np.nan, 1, 2, 0], [-np.inf] * 4, [np.nan] * 4, [3, np.nan, 3, -np.inf]], dt
    ).reshape(4, 2, 2, 1)
    y, res = nnref.max_pool2d_fwd(x, ksize=2, strides=2)
    dy = np.array([1, 2, 3, 4], dt).reshape(4, 1, 1, 1)
    yt, (gt,) = tape_vjp(lambda a: tf.nn.max_pool2d(a, 2, 2, "VALID"), (x,), dy)
    np.testing.assert_array_equal(y, yt)
    np.testing.assert_array_equal(nnref.max_pool2d_bwd(res, dy)[0], gt)


def test_overlapping_windows_accumulate_and_mass_is_conserved(rng) -> None:
    x = np.ones((1, 4, 4, 1))
    y, res = nnref.max_pool2d_fwd(x, ksize=2, strides=1, padding="VALID")
    dy = np.ones(y.shape)
    g = nnref.max_pool2d_bwd(res, dy)[0]
    assert g.sum() == y.size
    assert g[0, 0, 0, 0] == 1
    assert g[0, 1, 1, 0] == 1
    assert g[0, 3, 3, 0] == 0
    x = rng.standard_normal((2, 7, 6, 3))
    y, res = nnref.max_pool2d_fwd(x, ksize=3, strides=2, padding="SAME")
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(nnref.max_pool2d_bwd(res, dy)[0].sum(), dy.sum(), rtol=1e-12)


@pytest.mark.parametrize(
    ("kw", "err", "match"),
    [
        pytest.param(
            {"padding": [[0, 0], [2, 0], [0, 0], [0, 0]]},
            ValueError,
            r"top/bottom padding \(2, 0\) must be smaller than the window size 2",
            id="pad-not-smaller",
        ),
        pytest.param({"ksize": 0}, ValueError, "'ksize' must be positive", id="zero-ksize"),
        pytest.param({"padding": "same"}, ValueError, "upper case", id="lowercase"),
    ],
)
def test_bad_input(kw, err, match) -> None:
    args = {"ksize": 2, "strides": 2, "padding": "VALID", **kw}
    with pytest.raises(err, match=match):
        nnref.max_pool2d(np.ones((1, 4, 4, 1)), **args)


def test_rank_dtype_and_empty_output() -> None:
    with pytest.raises(ValueError, match=r"max_pool2d: argument 'x' must have rank 4"):
        nnref.max_pool2d(np.ones((4, 4, 1)), ksize=2, strides=2)
    with pytest.raises(TypeError, match="int64"):
        nnref.max_pool2d(np.ones((1, 4, 4, 1), np.int64), ksize=2, strides=2)
    y, res = nnref.max_pool2d_fwd(np.ones((1, 2, 2, 1)), ksize=3, strides=1, padding="VALID")
    assert y.shape == (1, 0, 0, 1)
    assert nnref.max_pool2d_bwd(res, np.zeros(y.shape))[0].shape == (1, 2, 2, 1)


def _masked_max(x: np.ndarray, k: int, s: int, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Max over each window's valid cells, by brute force (independent of nnref's padding)."""
    t, b, left, r = pads
    n, h, w, c = x.shape
    oh, ow = (h + t + b - k) // s + 1, (w + left + r - k) // s + 1
    y = np.empty((n, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows = slice(max(i * s - t, 0), min(i * s - t + k, h))
            cols = slice(max(j * s - left, 0), min(j * s - left + k, w))
            y[:, i, j] = x[:, rows, cols].max(axis=(1, 2))
    return y


@pytest.mark.parametrize("fwd", [nnref.max_pool2d_fwd, nnref.max_pool2d_naive_fwd])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize(
    "pads", [(0, 1, 0, 1), (1, 0, 0, 0), (0, 0, 1, 1), (1, 1, 1, 0), (2, 0, 0, 2)]
)
def test_padding_never_wins_over_negative_values(fwd, dt, pads) -> None:
    """All values negative: a padded cell that took part (as 0) would win every border window."""
    x = -1.0 - np.random.default_rng(sum(pads)).random((2, 6, 7, 3)).astype(dt)
    t, b, left, r = pads
    y, res = fwd(x, ksize=3, strides=2, padding=[[0, 0], [t, b], [left, r], [0, 0]])
    assert y.dtype == dt
    np.testing.assert_array_equal(y, _masked_max(x, 3, 2, pads))
    dy = np.ones(y.shape, dt)
    bwd = nnref.max_pool2d_bwd if fwd is nnref.max_pool2d_fwd else nnref.max_pool2d_naive_bwd
    (dx,) = bwd(res, dy)
    assert dx.dtype == dt
    assert dx.sum() == dy.sum()  # every window routes its gradient to one of its valid cells


@pytest.mark.parametrize("pads", [(1, 0, 0, 1), (0, 1, 1, 0), (1, 1, 1, 1)])
def test_all_minus_inf_windows_at_the_padding_keep_their_gradient(pads) -> None:
    """A window of only -inf routes to its first *valid* cell: nothing is lost to the padding."""
    x = np.full((1, 4, 4, 1), -np.inf)
    t, b, left, r = pads
    pad = [[0, 0], [t, b], [left, r], [0, 0]]
    for fwd, bwd in (
        (nnref.max_pool2d_fwd, nnref.max_pool2d_bwd),
        (nnref.max_pool2d_naive_fwd, nnref.max_pool2d_naive_bwd),
    ):
        y, res = fwd(x, ksize=2, strides=2, padding=pad)
        (dx,) = bwd(res, np.arange(1.0, y.size + 1).reshape(y.shape))
        assert dx.sum() == y.size * (y.size + 1) / 2


def test_disjoint_fast_path_writes_positive_zeros(rng) -> None:
    """Cells that receive no gradient hold +0.0 even where dy < 0 (TF's MaxPoolGrad)."""
    x = rng.standard_normal((2, 6, 6, 3))
    y, res = nnref.max_pool2d_fwd(x, ksize=2, strides=2)
    (dx,) = nnref.max_pool2d_bwd(res, -np.ones(y.shape))
    assert not np.any(np.signbit(dx) & (dx == 0))
    assert np.count_nonzero(dx) == y.size


@pytest.mark.parametrize("shape", [(1, 3, 6, 2), (2, 4, 9, 1), (1, 5, 5, 3)])
def test_non_square_windows_that_do_not_tile_the_input(shape, rng) -> None:
    """k = s = (2, 3): rows or columns past the last window get no gradient, not garbage."""
    x = rng.standard_normal(shape)
    y, res = nnref.max_pool2d_fwd(x, ksize=(2, 3), strides=(2, 3))
    yn, resn = nnref.max_pool2d_naive_fwd(x, ksize=(2, 3), strides=(2, 3))
    np.testing.assert_array_equal(y, yn)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(
        nnref.max_pool2d_bwd(res, dy)[0], nnref.max_pool2d_naive_bwd(resn, dy)[0]
    )


@pytest.mark.parametrize("fn", [nnref.max_pool2d, nnref.max_pool2d_naive])
def test_default_padding_is_valid(fn, rng) -> None:
    x = rng.standard_normal((1, 5, 5, 2))
    np.testing.assert_array_equal(
        fn(x, ksize=2, strides=2), fn(x, ksize=2, strides=2, padding="VALID")
    )
    assert fn(x, ksize=2, strides=2).shape == (1, 2, 2, 2)


def test_naive_ops_name_themselves_in_errors(rng) -> None:
    x = rng.standard_normal((1, 4, 4, 1))
    _, res = nnref.max_pool2d_naive_fwd(x, ksize=2, strides=2)
    with pytest.raises(ValueError, match=r"^max_pool2d_naive: argument 'dy' must have"):
        nnref.max_pool2d_naive_bwd(res, np.zeros((1, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"^max_pool2d: .*'ksize'"):
        nnref.max_pool2d_fwd(x, ksize=[1, 2, 3], strides=2)
    with pytest.raises(ValueError, match=r"^max_pool2d_naive: .*'ksize'"):
        nnref.max_pool2d_naive_fwd(x, ksize=0, strides=2)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("shape", [(2, 4, 6, 3), (1, 4, 5, 4), (1, 5, 4, 4)])
def test_fast_path_gradient_is_exact_on_reused_memory(dt, shape, rng) -> None:
    """k = s = 2, with and without exact tiling (a 4-channel input whose width is not a
    multiple of 2 must not pass for tiled): freed NaN-filled blocks of the same size are offered
    to the allocator first, so a cell backward fails to write would show as NaN."""
    x = rng.standard_normal(shape).astype(dt)
    y, res = nnref.max_pool2d_fwd(x, ksize=2, strides=2)
    dy = rng.standard_normal(y.shape).astype(dt)
    (want,) = nnref.max_pool2d_naive_bwd(nnref.max_pool2d_naive_fwd(x, ksize=2, strides=2)[1], dy)
    for _ in range(3):
        poison = np.full(shape, np.nan, dt)
        del poison
        (dx,) = nnref.max_pool2d_bwd(res, dy)
        assert dx.dtype == dt
        np.testing.assert_array_equal(dx, want)


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize(
    ("k", "s"), [(2, 2), (3, 2), (2, 3), ((2, 3), (2, 3))], ids=["tiled", "overlap", "gaps", "2x3"]
)
def test_unpadded_path_in_chunks_matches_naive(k, s, threads, rng, monkeypatch) -> None:
    """One image per chunk, chunks over threads: relu-like ties at 0, an all -inf window and a
    NaN in a later chunk (which sends the whole call to the general path). Overlapping windows
    add into shared cells in another order than the naive loops."""
    from nnref.ops import pool

    monkeypatch.setattr(pool, "_CHUNK_BYTES", 1)
    monkeypatch.setenv("NNREF_NUM_THREADS", threads)
    x = np.maximum(rng.standard_normal((5, 7, 8, 3)), 0)
    x[3, :3, :3, 1] = -np.inf
    for xin in (x, np.where(np.arange(5)[:, None, None, None] == 4, np.nan, x)):
        y, res = nnref.max_pool2d_fwd(xin, ksize=k, strides=s)
        yn, resn = nnref.max_pool2d_naive_fwd(xin, ksize=k, strides=s)
        np.testing.assert_array_equal(y, yn)
        dy = rng.standard_normal(y.shape)
        (dx,) = nnref.max_pool2d_bwd(res, dy)
        (want,) = nnref.max_pool2d_naive_bwd(resn, dy)
        np.testing.assert_array_equal(res.choice, resn.choice)
        assert_close(dx, want, rtol=1e-15, what="dx")
        assert not np.any(np.signbit(dx) & (dx == 0))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"u{a.itemsize}")


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize(
    ("shape", "k", "s", "pad"),
    [
        ((3, 6, 8, 32), 2, 2, "SAME"),  # the CNN's layout: cells of 32 channels
        ((2, 7, 5, 3), 2, 2, "VALID"),  # odd sizes: the last row and column are in no window
        ((2, 7, 5, 3), 2, 2, "SAME"),  # odd sizes: padded, the general path
        ((2, 6, 6, 2), 3, 2, "VALID"),  # overlapping windows
        ((2, 7, 8, 2), 2, 3, "VALID"),  # gaps between windows
    ],
    ids=["cnn-cells", "odd-valid", "odd-same", "overlap", "gaps"],
)
def test_cell_copies_give_the_general_paths_bits(dt, shape, k, s, pad, rng, monkeypatch) -> None:
    """The unpadded path (images staged contiguously, window offsets copied as channel cells,
    shares as integer products) gives the general path's bits, signed zeros included, on ties
    at +-0.0 and small integers; for every memory layout and thread count; dx holds dy or
    +0.0, as the naive loops."""
    from nnref.ops import pool

    monkeypatch.setattr(pool, "_CHUNK_BYTES", 1)  # one image per chunk: threads split them
    x = rng.integers(-2, 3, shape).astype(dt)
    x[x == 0] = np.where(rng.random(np.count_nonzero(x == 0)) < 0.5, -0.0, 0.0).astype(dt)
    x[0, :2, :2, 0] = -np.inf
    chans = np.zeros((*shape[:3], 2 * shape[3]), dt)
    chans[..., ::2] = x
    rows = np.zeros((shape[0], 2 * shape[1], *shape[2:]), dt)
    rows[:, ::2] = x
    rows.flags.writeable = False
    layouts = [x, chans[..., ::2], rows[:, ::2]]  # contiguous, channel-strided, read-only
    kw = {"ksize": k, "strides": s, "padding": pad}
    yn, resn = nnref.max_pool2d_naive_fwd(x, **kw)
    dy = rng.integers(-2, 3, yn.shape).astype(dt)
    dy[dy == 0] = -0.0
    monkeypatch.setattr(pool, "_unpadded_fwd", lambda *a: False)
    yg, resg = nnref.max_pool2d_fwd(x, **kw)  # the general path, also without padding
    monkeypatch.undo()
    monkeypatch.setattr(pool, "_CHUNK_BYTES", 1)
    (want,) = nnref.max_pool2d_naive_bwd(resn, dy)
    for threads, xin in itertools.product(["1", "2"], layouts):
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        y, res = nnref.max_pool2d_fwd(xin, **kw)
        np.testing.assert_array_equal(_bits(y), _bits(yg))
        np.testing.assert_array_equal(res.choice, resg.choice)
        np.testing.assert_array_equal(res.choice, resn.choice)
        (dx,) = nnref.max_pool2d_bwd(res, dy)
        assert dx.dtype == dt
        assert not np.any(np.signbit(dx) & (dx == 0))
        if s >= k:  # each cell receives at most one share: the naive loops' bits
            np.testing.assert_array_equal(_bits(dx), _bits(want))
        else:
            assert_close(dx, want, rtol=1e-6, what="dx")


def _brute_pool(x: np.ndarray, res, dy: np.ndarray):
    """Each window's maximum over its cells inside the input, and the cell that gets its
    gradient (distinct values: no tie rule involved), from the plan's pads alone."""
    (t, _, _), (left, _, _) = res.plan
    (k0, k1), (s0, s1) = res.ksize, res.strides
    y = np.empty(dy.shape, x.dtype)
    dx = np.zeros_like(x)
    for n, i, j, c in np.ndindex(*dy.shape):
        r0, c0 = max(i * s0 - t, 0), max(j * s1 - left, 0)
        win = x[n, r0 : max(i * s0 - t + k0, 0), c0 : max(j * s1 - left + k1, 0), c]
        a, b = np.unravel_index(np.argmax(win), win.shape)
        y[n, i, j, c] = win[a, b]
        dx[n, r0 + a, c0 + b, c] += dy[n, i, j, c]
    return y, dx


@pytest.mark.parametrize("pool", ["fast", "naive"])
@pytest.mark.parametrize(
    ("shape", "k", "s", "pad"),
    [
        ((1, 256, 256, 2), 256, 256, "VALID"),  # the global max of 65536 cells, tiled path
        ((1, 199, 200, 1), 200, 200, "SAME"),  # 40000 cells, padded: the general path
        ((1, 183, 183, 1), 182, 1, "VALID"),  # 33124 cells, overlapping windows
    ],
    ids=["global-256x256", "padded-200x200", "overlap-182x182"],
)
def test_windows_of_more_than_32767_cells_route_as_a_direct_computation(
    pool, shape, k, s, pad, rng
) -> None:
    """The routing array once was int16 for any window above 127 cells: an OverflowError from
    offset 32768 on. int32 holds them; fwd values and dx equal a direct computation."""
    fwd, bwd = {
        "fast": (nnref.max_pool2d_fwd, nnref.max_pool2d_bwd),
        "naive": (nnref.max_pool2d_naive_fwd, nnref.max_pool2d_naive_bwd),
    }[pool]
    x = rng.permutation(np.prod(shape)).astype(np.float32).reshape(shape)  # exact in float32
    y, res = fwd(x, ksize=k, strides=s, padding=pad)
    assert res.choice.dtype == np.int32
    dy = rng.integers(1, 9, y.shape).astype(np.float32)  # overlaps add exactly in any order
    (dx,) = bwd(res, dy)
    want_y, want_dx = _brute_pool(x, res, dy)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(dx, want_dx)


@pytest.mark.parametrize("pool", ["fast", "naive"])
@pytest.mark.parametrize(
    ("k", "s", "pad"),
    [
        ((10**6, 3 * 10**5), (1, 2), "SAME"),
        (1000, 3, [[0, 0], [999, 2], [1, 998], [0, 0]]),
    ],
    ids=["same-1e6x3e5", "explicit-1000"],
)
def test_windows_far_larger_than_the_input_cost_only_their_overlap(pool, k, s, pad, rng) -> None:
    """Padded pooling once visited every cell of the window, padding included (10^11 offsets
    for the SAME case, and a padded copy of the input as large): only the offsets that meet
    the input are visited now, with the values and routing of a direct computation."""
    fwd, bwd = {
        "fast": (nnref.max_pool2d_fwd, nnref.max_pool2d_bwd),
        "naive": (nnref.max_pool2d_naive_fwd, nnref.max_pool2d_naive_bwd),
    }[pool]
    x = rng.permutation(2 * 5 * 4 * 3).astype(np.float64).reshape(2, 5, 4, 3) - 60
    y, res = fwd(x, ksize=k, strides=s, padding=pad)
    dy = rng.integers(1, 9, y.shape).astype(np.float64)  # overlaps add exactly in any order
    (dx,) = bwd(res, dy)
    want_y, want_dx = _brute_pool(x, res, dy)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(dx, want_dx)


@pytest.mark.tf
@pytest.mark.parametrize(("k", "s"), [((9, 7), 1), ((9, 7), (2, 3)), ((6, 11), (4, 1))])
@pytest.mark.parametrize("dt", FLOATS)
def test_windows_larger_than_the_input_match_tf(k, s, dt, rng) -> None:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    for x in (np.ones((1, 5, 4, 2), dt), np.round(rng.standard_normal((2, 5, 4, 2))).astype(dt)):
        y, res = nnref.max_pool2d_fwd(x, ksize=k, strides=s, padding="SAME")
        dy = rng.standard_normal(y.shape).astype(dt)
        yt, (gt,) = tape_vjp(lambda a: tf.nn.max_pool2d(a, k, s, "SAME"), (x,), dy)
        np.testing.assert_array_equal(y, yt)
        assert_close(nnref.max_pool2d_bwd(res, dy)[0], gt, what=f"dx {dt.__name__}")


SIGNED_ZERO_WINDOWS = [
    [0.0, 0.0, 0.0, -0.0],
    [-0.0, 0.0, 0.0, 0.0],
    [0.0, -0.0, -0.0, -0.0],
    [-0.0, -0.0, 0.0, -0.0],
    [-1.0, -0.0, 0.0, -2.0],
]
#: (input height, width, padding): 2x2 windows, stride 2, whose first window holds the pattern
#: and takes each forward path: in pairs (tiling), the running maximum (an extra column left
#: out), the general path (SAME padding).
ZERO_PATHS = {"pairs": (2, 2, "VALID"), "running": (2, 3, "VALID"), "general": (3, 3, "SAME")}


def _signed_zero_input(dt, path: str) -> np.ndarray:
    h, w, _ = ZERO_PATHS[path]
    channels = 41  # SIMD loops and their tails
    x = np.full((3, h, w, channels), -5.0, dt)
    for ch in range(channels):
        x[:, :2, :2, ch] = np.reshape(SIGNED_ZERO_WINDOWS[ch % len(SIGNED_ZERO_WINDOWS)], (2, 2))
    return x


@pytest.mark.parametrize("path", list(ZERO_PATHS))
@pytest.mark.parametrize("dt", FLOATS)
def test_signed_zero_windows_keep_the_first_zero(path, dt, monkeypatch) -> None:
    """TF keeps the first of equal values: a window of +0.0 and -0.0 pools to its first zero
    (the fast and general paths once gave the last's sign)."""
    from nnref.ops import pool

    taken = []
    for name in ("_pairs_fwd", "_unpadded_fwd"):
        fast = getattr(pool, name)
        monkeypatch.setattr(pool, name, lambda *a, f=fast, n=name: taken.append(n) or f(*a))
    x = _signed_zero_input(dt, path)
    padding = ZERO_PATHS[path][2]
    y = nnref.max_pool2d(x, ksize=2, strides=2, padding=padding)
    assert taken == {"pairs": ["_pairs_fwd"], "running": ["_unpadded_fwd"], "general": []}[path]
    first = [next(v for v in cells if v == max(cells)) for cells in SIGNED_ZERO_WINDOWS]
    want = np.array([first[ch % len(first)] for ch in range(x.shape[3])], dt)
    for image in y[:, 0, 0]:
        assert np.signbit(image).tolist() == np.signbit(want).tolist()
    naive = nnref.max_pool2d_naive(x, ksize=2, strides=2, padding=padding)
    assert y.tobytes() == naive.tobytes()


@pytest.mark.tf
@pytest.mark.parametrize("path", list(ZERO_PATHS))
@pytest.mark.parametrize("dt", FLOATS)
def test_signed_zero_windows_match_tf(path, dt) -> None:
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    x = _signed_zero_input(dt, path)
    padding = ZERO_PATHS[path][2]
    ours = nnref.max_pool2d(x, ksize=2, strides=2, padding=padding)
    theirs = tf.nn.max_pool2d(tf.constant(x), 2, 2, padding).numpy()
    assert ours.tobytes() == theirs.tobytes()
