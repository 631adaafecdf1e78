"""Image datasets: generated shapes, IDX, image folders, npz - through engine.datasets and its images module.

Every file is written here by the test (PNG by a small encoder below, IDX with struct) so the
readers are checked against data built independently of them; Pillow, which reads the pictures,
is also the reference for the resize filter.
"""
import gzip
import os
import struct
import zlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine import datasets
from engine.datasets import images
from engine.spec import DatasetSpec

# ---- fixture writers (independent of engine.datasets) -------------------------------------------


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def png_bytes(samples, color_type, depth=8, filters=(0,), palette=None, interlace=0):
    """Encode (H, W, C) integer samples as PNG, row y filtered with filters[y % len(filters)]."""
    a = np.asarray(samples)
    h, w, ch = a.shape
    if depth == 16:
        rows = [a[y].astype(">u2").tobytes() for y in range(h)]
    elif depth == 8:
        rows = [a[y].astype(np.uint8).tobytes() for y in range(h)]
    else:
        bits = ((a[..., 0, None] >> np.arange(depth - 1, -1, -1)) & 1).astype(np.uint8).reshape(h, w * depth)
        rows = [np.packbits(bits[y]).tobytes() for y in range(h)]
    bpp = max(1, ch * depth // 8)
    prev, body = bytes(len(rows[0])), bytearray()
    for y, line in enumerate(rows):
        f = filters[y % len(filters)]
        body.append(f)
        for i, v in enumerate(line):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], (prev[i - bpp] if i >= bpp else 0)
            pred = (0, left, up, (left + up) // 2, _paeth(left, up, corner))[f]
            body.append((v - pred) % 256)
        prev = line

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace))
    if palette is not None:
        out += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    return out + chunk(b"IDAT", zlib.compress(bytes(body))) + chunk(b"IEND", b"")


def write_png(path, pixels):
    """uint8 (H, W) gray or (H, W, 3) RGB, with all five filter types in turn."""
    a = np.asarray(pixels, np.uint8)
    a3 = a[:, :, None] if a.ndim == 2 else a
    with open(path, "wb") as fh:
        fh.write(png_bytes(a3, 0 if a3.shape[2] == 1 else 2, filters=(0, 1, 2, 3, 4)))


def write_idx(path, arr, gz=False, magic=None):
    arr = np.asarray(arr, np.uint8)
    data = struct.pack(">I", magic if magic is not None else 0x800 | arr.ndim)
    data += struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as fh:
        fh.write(data)
    return str(path)


def write_mnist(tmp_path, n=60, h=7, w=5, gz=False, prefix="train", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    y = np.arange(n) % 10
    ext = ".gz" if gz else ""
    ip = write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", x, gz)
    lp = write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", y, gz)
    return ip, lp, x, y


def rows_of(data, scale=1.0):
    """Every (label, image bytes) pair of a Data's raw train+val, sorted - the split's union."""
    xs = np.concatenate([data.raw_x_train, data.raw_x_val])
    ys = np.concatenate([data.y_train, data.y_val])
    return sorted((int(c), np.round(img * scale).astype(np.uint8).tobytes()) for c, img in zip(ys, xs, strict=True))


def ds(kind, **params):
    return DatasetSpec(kind, params)


def expect_error(spec, *words):
    """ValueError (and nothing else) whose message holds every word; returns the message."""
    with pytest.raises(ValueError) as err:
        datasets.load(spec)
    msg = str(err.value)
    for word in words:
        assert word in msg, f"{word!r} not in {msg!r}"
    return msg


# ---- registry ----------------------------------------------------------------------------------

def test_every_kind_has_params_help_and_is_listed_by_datasets():
    assert set(images.IMAGE_PARAMS) == set(images.IMAGE_KINDS) == set(images.IMAGE_HELP)
    for kind, params in images.IMAGE_PARAMS.items():
        assert kind in datasets.all_kinds()
        assert {"val_fraction", "seed"} <= {p.name for p in params}
        for p in params:
            assert p.type in ("int", "float", "str", "path")
            if p.type in ("int", "float"):
                assert p.min <= p.default <= p.max, (kind, p.name)
    assert {p.name: p.type for p in images.IMAGE_PARAMS["idx"]}["images_path"] == "path"
    assert ("image_folder", "path") in images.FOLDER_PARAMS


@pytest.mark.parametrize("params, words", [
    ({"colour": 3}, ["dataset.params.colour", "not a parameter"]),
    ({"size": 8}, ["dataset.params.size", "16..64"]),
    ({"n_per_class": "many"}, ["dataset.params.n_per_class", "number"]),
    ({"n_per_class": 10.5}, ["dataset.params.n_per_class", "whole"]),
])
def test_bad_params_name_the_field(params, words):
    expect_error(ds("shapes", **params), *words)


def test_color_must_be_gray_or_rgb(tmp_path):
    expect_error(ds("image_folder", path=str(tmp_path), color="blue"), "dataset.params.color", "gray", "rgb")


# ---- shapes ------------------------------------------------------------------------------------

def test_shapes_same_seed_same_images_other_seed_other_images():
    a = datasets.load(ds("shapes", n_per_class=20, seed=3))
    b = datasets.load(ds("shapes", n_per_class=20, seed=3))
    c = datasets.load(ds("shapes", n_per_class=20, seed=4))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert a.x_train.shape == c.x_train.shape
    assert not np.allclose(a.raw_x_train, c.raw_x_train)


def test_shapes_every_class_in_both_parts_values_in_range_and_shape_follows_size():
    spec = ds("shapes", n_per_class=30, size=20, noise=0.3, val_fraction=0.2)
    data = datasets.load(spec)
    info = datasets.describe(spec)
    assert info.input_shape == data.info.input_shape == data.x_train.shape[1:] == (1, 20, 20)
    assert info.class_names == data.info.class_names == ["circle", "square", "triangle", "cross", "line"]
    assert np.bincount(data.y_train, minlength=5).tolist() == [24] * 5
    assert np.bincount(data.y_val, minlength=5).tolist() == [6] * 5
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    for raw in (data.raw_x_train, data.raw_x_val):
        assert raw.min() >= 0 and raw.max() <= 1
    # standardised per channel with training statistics
    assert abs(float(data.x_train.mean())) < 1e-4 and abs(float(data.x_train.std()) - 1) < 1e-3
    np.testing.assert_allclose(data.mean.ravel(), [data.raw_x_train.mean()], rtol=1e-4)


def shape_features(x):
    """Rotation- and translation-invariant features from pixels alone: elongation of the bright
    mass, its radial profile and the strength of its k-fold angular symmetries."""
    img = x[:, 0].astype(np.float64)
    s = img.shape[1]
    w = np.clip(img - np.median(img, axis=(1, 2), keepdims=True) - 0.15, 0, None)
    m = w.sum((1, 2)) + 1e-9
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    dy = yy - ((w * yy).sum((1, 2)) / m)[:, None, None]
    dx = xx - ((w * xx).sum((1, 2)) / m)[:, None, None]
    cyy, cxx, cxy = ((w * a).sum((1, 2)) / m for a in (dy * dy, dx * dx, dx * dy))
    tr, det = cyy + cxx, cyy * cxx - cxy ** 2
    l1 = tr / 2 + np.sqrt(np.maximum(tr ** 2 / 4 - det, 0))
    r = np.hypot(dy, dx) / np.sqrt(tr)[:, None, None]
    radial = [(w * ((r >= a) & (r < a + 0.25))).sum((1, 2)) / m for a in np.arange(0, 2.5, 0.25)]
    ang = np.arctan2(dy, dx)
    harm = [np.abs((w * np.exp(1j * k * ang)).sum((1, 2))) / m for k in range(1, 7)]
    return np.column_stack([(tr - l1) / l1, np.log(m), *radial, *harm, (w > 0).mean((1, 2))])


def test_shapes_pictures_match_their_labels():
    x, y = images.render_shapes(100, 28, 0.1, np.random.default_rng(1))
    xv, yv = images.render_shapes(40, 28, 0.1, np.random.default_rng(2))
    f, fv = shape_features(x), shape_features(xv)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(f, y)
    assert clf.score(fv, yv) > 0.85  # chance is 0.2
    med = np.array([np.median(f[y == k], axis=0) for k in range(5)])
    circle, square, triangle, cross, line = range(5)
    elong, h3, h4 = med[:, 0], med[:, 14], med[:, 15]
    assert elong[line] < 0.4 and min(elong[[circle, square, triangle, cross]]) > 0.7
    assert np.argmax(h3) == triangle
    assert np.argmax(np.where(np.arange(5) == line, -1, h4)) == cross and h4[square] > 3 * h4[circle]
    assert np.argmin(med[:, 13:18].max(axis=1)) == circle


# ---- IDX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    ip, lp, x, y = write_mnist(tmp_path, gz=gz)
    spec = ds("idx", images_path=ip, labels_path=lp, max_samples=0)
    data = datasets.load(spec)
    info = datasets.describe(spec)
    assert info.input_shape == data.x_train.shape[1:] == (1, 7, 5)
    assert info.class_names == [str(i) for i in range(10)] and info.n_classes == 10
    assert len(data.y_train) + len(data.y_val) == 60
    assert rows_of(data, 255) == sorted((int(c), img.tobytes()) for c, img in zip(y, x, strict=True))


def test_idx_fashion_names_and_max_samples(tmp_path):
    ip, lp, x, y = write_mnist(tmp_path, n=200, prefix="fashion-train")
    data = datasets.load(ds("idx", images_path=ip, labels_path=lp, max_samples=50, seed=1))
    assert data.info.class_names[0] == "T-shirt/top" and data.info.class_names[9] == "Ankle boot"
    assert len(data.y_train) + len(data.y_val) == 50
    originals = {(int(c), img.tobytes()) for c, img in zip(y, x, strict=True)}
    assert set(rows_of(data, 255)) <= originals


def test_idx_broken_files(tmp_path):
    ip, lp, x, y = write_mnist(tmp_path)
    expect_error(ds("idx", labels_path=lp), "dataset.params.images_path", "choose")
    expect_error(ds("idx", images_path=str(tmp_path / "nope"), labels_path=lp), "images_path", "no file")
    bad = write_idx(tmp_path / "bad-magic", x, magic=0x12345678)
    expect_error(ds("idx", images_path=bad, labels_path=lp), "images_path", "bad-magic", "magic")
    expect_error(ds("idx", images_path=lp, labels_path=ip), "images_path", "swap")
    floats = write_idx(tmp_path / "floats", x, magic=0x0D03)
    expect_error(ds("idx", images_path=floats, labels_path=lp), "floats", "float", "unsigned-byte")
    with open(ip, "rb") as fh:
        whole = fh.read()
    with open(tmp_path / "cut", "wb") as fh:
        fh.write(whole[:-7])
    expect_error(ds("idx", images_path=str(tmp_path / "cut"), labels_path=lp), "images_path", "cut", "truncated")
    with gzip.open(tmp_path / "cut.gz", "wb") as fh:
        fh.write(whole[:-7])
    expect_error(ds("idx", images_path=str(tmp_path / "cut.gz"), labels_path=lp), "images_path", "cut.gz", "download")
    with open(tmp_path / "damaged.gz", "wb") as fh:
        fh.write(gzip.compress(whole)[:-40])
    expect_error(ds("idx", images_path=str(tmp_path / "damaged.gz"), labels_path=lp), "images_path", "damaged.gz")
    few = write_idx(tmp_path / "few-labels", y[:50])
    msg = expect_error(ds("idx", images_path=ip, labels_path=few), "labels_path", "50 labels", "60 images")
    assert "few-labels" in msg
    one = write_idx(tmp_path / "one-class", np.zeros(60))
    expect_error(ds("idx", images_path=ip, labels_path=one), "labels_path", "two classes")


# ---- reading pictures (Pillow) -------------------------------------------------------------------------

@pytest.mark.parametrize("color_type, depth, ch", [(0, 8, 1), (0, 16, 1), (0, 1, 1), (0, 4, 1), (2, 8, 3),
                                                   (2, 16, 3), (4, 8, 2), (6, 8, 4)])
def test_png_every_filter_type_and_depth(color_type, depth, ch):
    rng = np.random.default_rng(depth + ch)
    a = rng.integers(0, 2 ** depth, (9, 11, ch))
    out = images.decode_image(png_bytes(a, color_type, depth, filters=(0, 1, 2, 3, 4)))
    keep = 1 if ch <= 2 else 3  # alpha is dropped
    # Pillow reads 16-bit colour as 8-bit RGB; 16-bit gray keeps its full precision
    atol = 1 / 255 if (color_type, depth) == (2, 16) else 1e-6
    assert out.shape == (9, 11, keep) and out.dtype == np.float32
    np.testing.assert_allclose(out, a[:, :, :keep] / (2 ** depth - 1), atol=atol)


def test_png_palette_colour_and_gray():
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 4, (6, 7, 1))
    pal = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255], [9, 9, 9]])
    out = images.decode_image(png_bytes(idx, 3, 2, palette=pal, filters=(4, 3)))
    np.testing.assert_allclose(out, pal[idx[:, :, 0]] / 255, atol=1e-6)
    gray = images.decode_image(png_bytes(idx, 3, 8, palette=[[v] * 3 for v in (0, 50, 100, 250)]))
    assert gray.shape == (6, 7, 1)
    np.testing.assert_allclose(gray[:, :, 0], np.array([0, 50, 100, 250])[idx[:, :, 0]] / 255, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16", "LA"])
def test_png_modes_read_as_gray_or_rgb(tmp_path, mode):
    pil = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    rgb = pil.fromarray(rng.integers(0, 256, (23, 31, 3), dtype=np.uint8), "RGB")
    # smooth gradients make Pillow pick Sub/Up/Average/Paeth filters, noise makes it pick None
    ramp = np.add.outer(np.arange(23) * 9, np.arange(31) * 7) % 256
    im = rgb.convert(mode) if mode not in ("I;16", "L") else None
    if mode == "L":
        im = pil.fromarray(ramp.astype(np.uint8), "L")
    if mode == "I;16":
        im = pil.fromarray((ramp * 257).astype(np.uint16))
    path = tmp_path / "x.png"
    im.save(path)
    mine = images.read_image(str(path))
    with pil.open(path) as ref:
        if mode == "I;16":
            want = np.asarray(ref, np.float64)[:, :, None] / 65535
        elif mode in ("L", "1", "LA"):
            want = np.asarray(ref.convert("L"), np.float64)[:, :, None] / 255
        else:
            want = np.asarray(ref.convert("RGB"), np.float64) / 255
    np.testing.assert_allclose(mine, want, atol=1e-6)


def test_pnm_binary_and_ascii():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    c = rng.integers(0, 1000, (4, 3, 3)).astype(np.uint16)
    p5 = b"P5\n# made by a test\n6 5\n255\n" + g.tobytes()
    p6 = b"P6 3 4 999\n" + c.astype(">u2").tobytes()
    p2 = b"P2\n6 5\n255\n" + " ".join(map(str, g.ravel())).encode()
    p5_16 = b"P5 6 5 999\n" + (g.astype(np.uint16) * 3).astype(">u2").tobytes()
    np.testing.assert_allclose(images.decode_image(p5)[:, :, 0], g / 255, atol=1e-6)
    np.testing.assert_allclose(images.decode_image(p2)[:, :, 0], g / 255, atol=1e-6)
    np.testing.assert_allclose(images.decode_image(p5_16)[:, :, 0], g.astype(int) * 3 / 999, atol=1e-4)
    np.testing.assert_allclose(images.decode_image(p6), c / 999, atol=1 / 255)  # 16-bit colour: 8 bits kept
    with pytest.raises(ValueError, match="short.pgm.*damaged"):
        images.decode_image(p5[:-3], "short.pgm")


def test_damaged_png_bytes_only_ever_raise_value_error_naming_the_file():
    good = png_bytes(np.random.default_rng(2).integers(0, 256, (12, 10, 3)), 2, filters=(1, 4))
    rng = np.random.default_rng(3)
    outcomes = set()
    for i in range(300):
        b = bytearray(good)
        if i % 2:
            b = b[:rng.integers(0, len(b))]
        else:
            for _ in range(rng.integers(1, 4)):
                b[rng.integers(8, len(b))] = rng.integers(0, 256)
        try:
            images.decode_image(bytes(b), "hostile.png")
            outcomes.add("decoded")
        except ValueError as exc:
            assert "hostile.png" in str(exc)
            outcomes.add("refused")
    assert "refused" in outcomes


def test_resize_constant_blocks_and_pillow_reference():
    const = np.full((40, 30, 3), 0.25, np.float32)
    np.testing.assert_allclose(images.resize(const, 8), 0.25, atol=1e-6)
    # a linear filter reproduces a linear ramp away from the borders, sampled at the output pixel centres
    ramp = np.add.outer(3.0 * np.arange(40), 2.0 * np.arange(40)).astype(np.float32)[:, :, None]
    centres = 4 * np.arange(10) + 1.5
    want = np.add.outer(3 * centres, 2 * centres)
    np.testing.assert_allclose(images.resize(ramp, 10)[0, 1:9, 1:9], want[1:9, 1:9], rtol=1e-5)
    pil = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(4).random((37, 53)).astype(np.float32)
    for size in (8, 28, 64):
        ref = np.asarray(pil.fromarray(img, "F").resize((size, size), pil.BILINEAR))
        np.testing.assert_allclose(images.resize(img[:, :, None], size)[0], ref, atol=1e-4)


# ---- image folder ------------------------------------------------------------------------------

def make_folder(root, per_class=6, size=(12, 9)):
    """cats/ bright red-ish images (PNG, PPM), dogs/ dark gray ones (PNG, PGM, .npy) + a stray file."""
    rng = np.random.default_rng(0)
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    (root / ".hidden").mkdir()
    h, w = size
    for i in range(per_class):
        red = np.zeros((h, w, 3), np.uint8)
        red[..., 0] = 200 + rng.integers(0, 50)
        if i % 2:
            write_png(root / "cats" / f"c{i}.png", red)
        else:
            (root / "cats" / f"c{i}.ppm").write_bytes(b"P6\n%d %d\n255\n" % (w, h) + red.tobytes())
        dark = rng.integers(0, 60, (h, w), dtype=np.uint8)
        if i % 3 == 0:
            write_png(root / "dogs" / f"d{i}.png", dark)
        elif i % 3 == 1:
            (root / "dogs" / f"d{i}.pgm").write_bytes(b"P5 %d %d 255\n" % (w, h) + dark.tobytes())
        else:
            np.save(root / "dogs" / f"d{i}.npy", dark)
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "cats" / ".DS_Store").write_bytes(b"\0junk")
    return root


@pytest.mark.parametrize("color, ch", [("gray", 1), ("rgb", 3)])
def test_image_folder_loads_gray_and_rgb_resized(tmp_path, color, ch):
    root = make_folder(tmp_path / "pets")
    spec = ds("image_folder", path=str(root), size=10, color=color, val_fraction=0.34)
    info = datasets.describe(spec)
    data = datasets.load(spec)
    assert info.input_shape == data.x_train.shape[1:] == data.x_val.shape[1:] == (ch, 10, 10)
    assert info.class_names == data.info.class_names == ["cats", "dogs"]
    assert len(data.y_train) + len(data.y_val) == 12
    assert set(data.y_val.tolist()) == {0, 1}
    raw = np.concatenate([data.raw_x_train, data.raw_x_val])
    ys = np.concatenate([data.y_train, data.y_val])
    cats, dogs = raw[ys == 0], raw[ys == 1]
    if ch == 3:  # red images: red channel bright, others zero; gray ones equal in all channels
        assert cats[:, 0].min() > 0.75 and cats[:, 1:].max() == 0
        np.testing.assert_allclose(dogs[:, 0], dogs[:, 2], rtol=1e-6)
    else:
        # each cat is one flat red level R in 200..249; gray is its luma 0.299 * R
        level = cats[:, 0, 0, 0] / 0.299 * 255
        np.testing.assert_allclose(cats, np.broadcast_to(cats[:, :, :1, :1], cats.shape), atol=1e-6)
        np.testing.assert_allclose(level, np.round(level), atol=1e-3)
        assert level.min() >= 200 and level.max() <= 249
        assert dogs.max() < 60 / 255 + 1e-6
    assert abs(float(data.x_train.mean())) < 1e-4


def test_image_folder_max_per_class_and_seed(tmp_path):
    root = make_folder(tmp_path / "pets")
    data = datasets.load(ds("image_folder", path=str(root), max_per_class=4, size=8))
    assert np.bincount(np.concatenate([data.y_train, data.y_val])).tolist() == [4, 4]


def test_image_folder_problems_are_clear(tmp_path):
    expect_error(ds("image_folder"), "dataset.params.path", "choose a folder")
    expect_error(ds("image_folder", path=str(tmp_path / "missing")), "dataset.params.path", "no folder")
    flat = tmp_path / "flat"
    flat.mkdir()
    write_png(flat / "a.png", np.zeros((4, 4)))
    expect_error(ds("image_folder", path=str(flat)), "flat", "no subfolders")
    (flat / "only").mkdir()
    write_png(flat / "only" / "a.png", np.zeros((4, 4)))
    expect_error(ds("image_folder", path=str(flat)), "only one class", "only")
    (flat / "empty").mkdir()
    (flat / "empty" / "readme.txt").write_text("x")
    expect_error(ds("image_folder", path=str(flat)), "empty", "no images", ".txt")
    write_png(flat / "empty" / "b.png", np.zeros((4, 4)))
    (flat / "empty" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    expect_error(ds("image_folder", path=str(flat)), "broken.png", "damaged")
    (flat / "empty" / "broken.png").write_bytes(b"not a png at all")
    expect_error(ds("image_folder", path=str(flat)), "broken.png")
    os.remove(flat / "empty" / "broken.png")
    np.save(flat / "empty" / "vec.npy", np.zeros((2, 3, 7)))
    expect_error(ds("image_folder", path=str(flat)), "empty/vec.npy", "(H, W)")


def test_unreadable_class_folder(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "pets")
    real_scandir = os.scandir

    def scandir(path):  # what a folder without read permission does (chmod does not stop root)
        if str(path).endswith("dogs"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    expect_error(ds("image_folder", path=str(root)), "dogs", "Permission denied")


def test_image_folder_reads_every_common_format(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    root = tmp_path / "set"
    formats = ("png", "jpg", "bmp", "gif", "tif", "webp", "ppm")
    for c, v in (("a", 40), ("b", 210)):
        (root / c).mkdir(parents=True)
        for ext in formats:
            pil.fromarray(np.full((12, 10, 3), v, np.uint8)).save(root / c / f"img.{ext}")
    (root / "b" / "notes.txt").write_text("not an image")
    data = datasets.load(ds("image_folder", path=str(root), size=8, color="rgb", val_fraction=0.3))
    raw = np.concatenate([data.raw_x_train, data.raw_x_val])
    ys = np.concatenate([data.y_train, data.y_val])
    assert np.bincount(ys).tolist() == [len(formats)] * 2
    np.testing.assert_allclose(raw[ys == 0], 40 / 255, atol=3 / 255)
    np.testing.assert_allclose(raw[ys == 1], 210 / 255, atol=3 / 255)


def test_an_oversized_picture_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 50)
    msg = str(pytest.raises(ValueError, images.decode_image, png_bytes(np.zeros((8, 8, 1), int), 0), "big.png").value)
    assert "big.png" in msg and "too large" in msg


def test_image_folder_reads_jpeg_with_pillow(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    root = tmp_path / "set"
    for c, v in (("a", 30), ("b", 220)):
        (root / c).mkdir(parents=True)
        for i in range(3):
            pil.fromarray(np.full((16, 16, 3), v, np.uint8)).save(root / c / f"{i}.jpg")
    data = datasets.load(ds("image_folder", path=str(root), size=8))
    raw = np.concatenate([data.raw_x_train, data.raw_x_val])
    ys = np.concatenate([data.y_train, data.y_val])
    np.testing.assert_allclose(raw[ys == 0], 30 / 255, atol=3 / 255)
    np.testing.assert_allclose(raw[ys == 1], 220 / 255, atol=3 / 255)


# ---- npz ---------------------------------------------------------------------------------------

_sprung = []


class _Trap:
    """Unpickling this records it - a loader that unpickles would be running a stranger's code."""

    def __reduce__(self):
        return (_sprung.append, ("unpickled",))


@pytest.mark.parametrize("layout, shape", [("nhw", (10, 6, 5)), ("nchw", (10, 3, 6, 5)), ("nhwc", (10, 6, 5, 3)),
                                           ("nhwc1", (10, 6, 5, 1))])
def test_npz_layouts(tmp_path, layout, shape):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    y = np.array([3, 7] * 5)
    path = tmp_path / f"{layout}.npz"
    (np.savez_compressed if layout == "nhwc1" else np.savez)(path, x=x, y=y)
    spec = ds("npz", path=str(path), val_fraction=0.2)
    info = datasets.describe(spec)
    data = datasets.load(spec)
    chw = {"nhw": (1, 6, 5), "nchw": (3, 6, 5), "nhwc": (3, 6, 5), "nhwc1": (1, 6, 5)}[layout]
    assert info.input_shape == data.x_train.shape[1:] == chw
    assert info.class_names == ["3", "7"]
    want = x[:, None] if layout == "nhw" else x.transpose(0, 3, 1, 2) if layout.startswith("nhwc") else x
    assert rows_of(data, 255) == sorted((int(c == 7), img.tobytes()) for c, img in zip(y, want, strict=True))


def test_npz_text_labels_and_class_names(tmp_path):
    x = np.random.default_rng(1).random((8, 4, 4))
    np.savez(tmp_path / "t.npz", x=x, y=np.array(["dog", "cat"] * 4))
    info = datasets.describe(ds("npz", path=str(tmp_path / "t.npz")))
    assert info.class_names == ["cat", "dog"]
    np.savez(tmp_path / "n.npz", x=x, y=np.array([0, 2] * 4), class_names=np.array(["zero", "one", "two"]))
    data = datasets.load(ds("npz", path=str(tmp_path / "n.npz")))
    assert data.info.class_names == ["zero", "one", "two"] and set(data.y_train.tolist()) == {0, 2}
    assert sorted(np.concatenate([data.raw_x_train, data.raw_x_val]).ravel().tolist()) == \
        pytest.approx(sorted(x.astype(np.float32).ravel().tolist()))


def test_npz_bad_files(tmp_path):
    x, y = np.zeros((6, 4, 4)), np.array([0, 1] * 3)

    def bad(name, *words, **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return expect_error(ds("npz", path=str(path)), "dataset.params.path", name, *words)

    bad("nox.npz", "no array 'x'", "np.savez", images=x, y=y)
    bad("noy.npz", "no array 'y'", x=x)
    bad("short.npz", "one label per image", x=x, y=y[:4])
    bad("flat.npz", "(N, H, W)", x=np.zeros((6, 16)), y=y)
    bad("rgba.npz", "C = 1 or 3", x=np.zeros((6, 4, 4, 4, 4)), y=y)
    bad("text.npz", "numbers", x=np.array([["a"] * 4] * 6).reshape(6, 2, 2), y=y)
    nan = x.copy()
    nan[2, 1, 1] = np.nan
    bad("nan.npz", "NaN", x=nan, y=y)
    bad("neg.npz", "whole numbers", x=x, y=-y)
    bad("one.npz", "one class", x=x, y=np.zeros(6, int))
    bad("names.npz", "class_names", x=x, y=y * 5, class_names=np.array(["a", "b"]))
    (tmp_path / "plain.npz").write_bytes(b"just text")
    expect_error(ds("npz", path=str(tmp_path / "plain.npz")), "plain.npz", "not a .npz")
    expect_error(ds("npz", path=str(tmp_path / "absent.npz")), "dataset.params.path", "no file")


def test_damaged_npz_only_ever_raises_value_error(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, x=np.random.default_rng(0).random((6, 4, 4)), y=np.array([0, 1] * 3))
    whole = good.read_bytes()
    rng = np.random.default_rng(1)
    for i in range(60):
        b = bytearray(whole[:rng.integers(1, len(whole))] if i % 2 else whole)
        if i % 2 == 0:
            b[rng.integers(0, len(b))] ^= 0xFF
        (tmp_path / "hostile.npz").write_bytes(bytes(b))
        try:
            datasets.load(ds("npz", path=str(tmp_path / "hostile.npz")))
        except ValueError as exc:
            assert "hostile.npz" in str(exc)


def test_npz_object_arrays_are_refused_not_unpickled(tmp_path):
    _sprung.clear()
    objs = np.empty(6, dtype=object)
    objs[:] = [_Trap() for _ in range(6)]
    np.savez(tmp_path / "evil_x.npz", x=objs, y=np.array([0, 1] * 3))
    np.savez(tmp_path / "evil_y.npz", x=np.zeros((6, 4, 4)), y=objs)
    for name in ("evil_x.npz", "evil_y.npz"):
        for fn in (datasets.describe, datasets.load):
            with pytest.raises(ValueError, match=f"{name}.*object array"):
                fn(ds("npz", path=str(tmp_path / name)))
    assert _sprung == []


# ---- integration -------------------------------------------------------------------------------

def test_describe_agrees_with_load_for_every_kind(tmp_path):
    ip, lp, _, _ = write_mnist(tmp_path, gz=True)
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 5, 5, 3), np.uint8), y=np.array([0, 1] * 4))
    specs = {
        "shapes": ds("shapes", n_per_class=10, size=16),
        "idx": ds("idx", images_path=ip, labels_path=lp),
        "image_folder": ds("image_folder", path=str(make_folder(tmp_path / "f")), size=12, color="rgb"),
        "npz": ds("npz", path=str(tmp_path / "d.npz")),
    }
    assert set(specs) == set(images.IMAGE_KINDS)
    for kind, spec in specs.items():
        info = datasets.describe(spec)
        data = datasets.load(spec)
        assert info.is_image and info.kind == kind
        assert info.input_shape == data.info.input_shape == data.x_train.shape[1:], kind
        assert (info.n_classes, info.class_names) == (data.info.n_classes, data.info.class_names), kind
        assert data.mean.shape == data.std.shape == (info.input_shape[0], 1, 1), kind
        assert data.x_train.dtype == np.float32 and data.y_val.dtype == np.int64, kind
        assert 0 <= data.y_train.min() and data.y_train.max() < info.n_classes, kind


def test_design_validation_reports_a_missing_image_folder():
    from engine.spec import Spec
    from engine.validation import validate

    problems = validate(Spec(dataset=ds("image_folder", path="")))
    assert any("dataset.params.path" in str(p) and "folder" in str(p) for p in problems)


def test_a_preview_sample_reads_only_the_images_it_shows(tmp_path, monkeypatch):
    make_folder(tmp_path / "pics", per_class=40)
    reads = []
    real = images.read_image
    monkeypatch.setattr(images, "read_image", lambda path, name=None: reads.append(path) or real(path, name))
    spec = ds("image_folder", path=str(tmp_path / "pics"), size=8)
    x, y, names, total = images.sample(spec, 12)
    n_classes = len(names)
    assert total == 40 * n_classes, "the size of the whole set comes from the listing"
    assert len(reads) == len(x) <= 12 + n_classes, "only the sampled pictures are decoded"
    assert x.shape[1:] == (1, 8, 8) and 0.0 <= x.min() and x.max() <= 1.0
    assert set(y.tolist()) == set(range(n_classes)), "every class is in the preview"
    full = datasets.load(spec)
    assert len(full.y_train) + len(full.y_val) == total


def test_a_preview_sample_of_idx_equals_the_first_images(tmp_path):
    imgs, labels, raw, _ = write_mnist(tmp_path, n=60)
    spec = ds("idx", images_path=imgs, labels_path=labels)
    x, y, names, total = images.sample(spec, 10)
    assert total == 60 and x.shape == (10, 1, 7, 5)
    assert np.array_equal(np.rint(x[:, 0] * 255).astype(np.uint8), raw[:10])
    assert len(y) == 10


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory):
    """100,000 small pictures in 10 class folders (raw PGM: written fast, read by Pillow)."""
    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (10, 16), dtype=np.uint8)
    for c in range(10):
        folder = root / f"class{c}"
        folder.mkdir()
        body = b"P5 4 4 255\n" + pixels[c].tobytes()
        for i in range(10_000):
            with open(folder / f"{i:05d}.pgm", "wb") as fh:
                fh.write(body)
    return root


def test_a_folder_of_100k_images_reads_with_progress_and_bounded_memory(big_folder):
    spec = ds("image_folder", path=str(big_folder), size=8, max_per_class=300)
    info = datasets.describe(spec)  # lists the 100,000 files, reads none
    assert info.n_classes == 10 and info.input_shape == (1, 8, 8)
    seen = []
    data = datasets.load(spec, progress=lambda done, total: seen.append((done, total)))
    total = 10 * 300
    assert len(data.y_train) + len(data.y_val) == total, "max_per_class bounds what is read and held"
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= total // images.PROGRESS_EVERY
    # memory: the arrays hold exactly the chosen images (float32), nothing per file beyond them
    held = sum(a.nbytes for a in (data.x_train, data.x_val, data.raw_x_train, data.raw_x_val))
    assert held == 2 * total * 64 * 4


def test_reading_a_big_folder_can_be_cancelled(big_folder, monkeypatch):
    reads = []
    real = images.read_image
    monkeypatch.setattr(images, "read_image", lambda path, name=None: reads.append(path) or real(path, name))
    spec = ds("image_folder", path=str(big_folder), size=8, max_per_class=10_000)
    calls = []
    with pytest.raises(images.LoadCancelled):
        datasets.load(spec, progress=lambda done, total: calls.append(done) or len(calls) < 3)
    assert len(reads) == 2 * images.PROGRESS_EVERY, "reading stopped at the next report after the cancel"
