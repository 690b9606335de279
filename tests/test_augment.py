"""cnnlab.augment: every transform against a hand-made or independent expectation."""
import numpy as np
import pytest

from cnnlab.augment import (Compose, ContrastJitter, MixSynthetic, PCAColorJitter, RandomAffine, RandomCrop,
                            RandomHorizontalFlip, RandomVerticalFlip, Transform, affine, augmented_loader,
                            rgb_pca)
from cnnlab.data import DataLoader


def images(n=4, c=3, h=8, w=8, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=(n, c, h, w)).astype(dtype)


ALL = [
    RandomCrop(8, padding=2),
    RandomHorizontalFlip(),
    RandomVerticalFlip(0.5),
    RandomAffine(15, translate=(0.1, 0.2), scale=(0.8, 1.2), shear=(-10, 10, -5, 5)),
    ContrastJitter(0.4),
    PCAColorJitter(0.1),
    Compose([RandomCrop(8, 1), RandomHorizontalFlip(), ContrastJitter(0.2)]),
]


# --- common contract ---------------------------------------------------------------------------------
@pytest.mark.parametrize("t", ALL, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_kept_input_unchanged_labels_untouched(t, dtype):
    x = images(dtype=dtype)
    x0 = x.copy()
    y = np.array([3, 1, 4, 1])
    out, labels = t.apply_batch(x, y, 0)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert labels is y and np.array_equal(y, [3, 1, 4, 1])
    np.testing.assert_array_equal(x, x0)
    assert not np.shares_memory(out, x)
    assert not np.array_equal(out, x)  # it did something (for this seed every transform changes the batch)


@pytest.mark.parametrize("t", ALL, ids=lambda t: type(t).__name__)
def test_same_seed_same_output_other_seed_other_output(t):
    x = images(n=16)
    np.testing.assert_array_equal(t(x, 5), t(x, 5))
    np.testing.assert_array_equal(t(x, np.random.default_rng(5)), t(x, 5))
    assert not np.array_equal(t(x, 5), t(x, 6))
    gen = np.random.default_rng(5)  # a shared Generator advances: two calls differ
    assert not np.array_equal(t(x, gen), t(x, gen))


# --- flips -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flip, axis", [(RandomHorizontalFlip(1.0), 3), (RandomVerticalFlip(1.0), 2)])
def test_flip_twice_is_identity_and_once_reverses_the_axis(flip, axis):
    x = images()
    once = flip(x, 0)
    np.testing.assert_array_equal(once, np.flip(x, axis=axis))
    np.testing.assert_array_equal(flip(once, 1), x)


def test_flip_with_probability_chooses_per_image():
    x = images(n=64)
    out = RandomHorizontalFlip(0.5)(x, 3)
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ kept)
    assert 16 < flipped.sum() < 48
    np.testing.assert_array_equal(RandomVerticalFlip(0.0)(x, 3), x)


# --- crop --------------------------------------------------------------------------------------------
def shifted(img, dy, dx):
    """img (C, H, W) moved down by dy and right by dx, zeros where nothing came in."""
    out = np.zeros_like(img)
    h, w = img.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_crop_with_padding_is_a_shift_of_at_most_padding_and_keeps_the_image_inside():
    x = images(n=200, c=2, h=6, w=5, seed=1) + 5.0  # no zeros in the images themselves
    p = 2
    out = RandomCrop((6, 5), padding=p)(x, 0)
    seen = set()
    for o, i in zip(out, x):
        matches = [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                   if np.array_equal(o, shifted(i, dy, dx))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == (2 * p + 1) ** 2  # every window position is used


def test_crop_without_padding_cuts_a_window_of_the_image():
    x = np.arange(2 * 1 * 5 * 6, dtype=np.float64).reshape(2, 1, 5, 6)
    out = RandomCrop((3, 2))(x, 0)
    assert out.shape == (2, 1, 3, 2)
    for o, i in zip(out, x):
        top, left = np.argwhere(i[0] == o[0, 0, 0])[0]
        np.testing.assert_array_equal(o, i[:, top:top + 3, left:left + 2])


# --- affine ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [7, 8])
def test_rotation_by_90_degrees_matches_np_rot90(size):
    # Convention: positive angles turn the image counter-clockwise as displayed (row 0 at the top),
    # which is np.rot90(image, k=1) on the (H, W) axes; -90 is k=-1.
    x = images(n=3, c=2, h=size, w=size)
    for degrees, k in (((90, 90), 1), ((-90, -90), -1)):
        out = RandomAffine(degrees=degrees)(x, 0)
        expected = np.rot90(x, k=k, axes=(2, 3))
        np.testing.assert_allclose(out[:, :, 1:-1, 1:-1], expected[:, :, 1:-1, 1:-1], atol=1e-5)


def test_rotation_sign_on_one_pixel_and_on_a_non_square_image():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 0, 4] = 1.0  # top-right corner
    out = affine(x, 90)
    assert out[0, 0, 0, 0] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)  # -> top-left
    # a 6 x 10 image turns about its centre: the middle 6 columns of the output are rot90 of its middle 6
    x = images(n=2, c=1, h=6, w=10)
    out = affine(x, 90)
    np.testing.assert_allclose(out[:, :, :, 2:8], np.rot90(x[:, :, :, 2:8], 1, axes=(2, 3)), atol=1e-5)


def test_integer_translation_moves_pixels_and_fills_zeros():
    x = images(n=2, c=3, h=6, w=7) + 3.0
    out = affine(x, 0, translate=(2, -1))  # 2 to the right, 1 up
    expected = np.stack([shifted(i, -1, 2) for i in x])
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_one_warp_samples_a_linear_ramp_exactly_where_the_hand_formula_says():
    # f(row, col) = 0.3 col - 0.7 row + 2 is reproduced exactly by bilinear interpolation inside the image.
    h, w = 21, 21
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (0.3 * cols - 0.7 * rows + 2.0)[None, None]
    theta, s, tx, ty = 30.0, 1.25, 1.5, -0.5
    out = affine(x, theta, translate=(tx, ty), scale=s)
    # inverse of p' = s R (p - c) + c + t, with R turning counter-clockwise on screen (y down):
    c = (h - 1) / 2
    a = np.deg2rad(theta)
    dx, dy = cols - c - tx, rows - c - ty
    src_col = (np.cos(a) * dx - np.sin(a) * dy) / s + c
    src_row = (np.sin(a) * dx + np.cos(a) * dy) / s + c
    inside = (src_row >= 0) & (src_row <= h - 1) & (src_col >= 0) & (src_col <= w - 1)
    assert inside.mean() > 0.4
    np.testing.assert_allclose(out[0, 0][inside], (0.3 * src_col - 0.7 * src_row + 2.0)[inside], atol=1e-9)
    assert np.all(np.abs(out[0, 0][~inside]) < np.abs(x).max())  # blended towards the zero fill outside


def test_shear_moves_each_row_in_proportion_to_its_offset():
    x = np.zeros((1, 1, 5, 9))
    x[0, 0, :, 4] = 1.0  # a vertical line through the centre column
    out = affine(x, 0, shear=(45.0, 0.0))  # x' = x + tan(45) y: the row 1 below the centre moves 1 right
    for row in range(5):
        col = 4 + (row - 2)
        assert out[0, 0, row, col] == pytest.approx(1.0)
        assert out[0, 0, row].sum() == pytest.approx(1.0)


def test_scale_keeps_the_center_and_fill_value_outside():
    x = images(n=1, c=1, h=9, w=9, dtype=np.float64)
    out = affine(x, 0, scale=0.5, fill=-7.0)
    assert out[0, 0, 4, 4] == pytest.approx(x[0, 0, 4, 4])
    assert out[0, 0, 4, 5] == pytest.approx(x[0, 0, 4, 6])  # one pixel right of centre reads two pixels right
    np.testing.assert_allclose(out[0, 0, 0, :], -7.0)  # far outside the shrunk image: the fill


def test_random_affine_is_one_warp_with_the_drawn_parameters():
    x = images(n=5, c=2, h=10, w=10)
    t = RandomAffine(degrees=(-20, 20), translate=(0.1, 0.1), scale=(0.9, 1.1), shear=(-5, 5, -3, 3))
    gen = np.random.default_rng(9)
    angle = gen.uniform(-20, 20, 5)
    tx, ty = gen.uniform(-1, 1, 5), gen.uniform(-1, 1, 5)
    s = gen.uniform(0.9, 1.1, 5)
    sx, sy = gen.uniform(-5, 5, 5), gen.uniform(-3, 3, 5)
    np.testing.assert_allclose(t(x, 9), affine(x, angle, (tx, ty), s, (sx, sy)), atol=1e-6)


# --- colour ------------------------------------------------------------------------------------------
def test_contrast_jitter_keeps_each_mean_and_scales_the_spread():
    x = images(n=50, dtype=np.float64)
    out = ContrastJitter(0.3)(x, 0)
    m = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3), keepdims=True), m, atol=1e-12)
    f = (out - m) / (x - m)
    np.testing.assert_allclose(f, f[:, :1, :1, :1] * np.ones_like(f), rtol=1e-9)
    assert np.all((f >= 0.7) & (f <= 1.3)) and f.std() > 0.05
    np.testing.assert_allclose(ContrastJitter(0.0)(x, 0), x, atol=1e-12)


def covariance_by_hand(data):
    n, _, h, w = data.shape
    pixels = [data[k, :, i, j] for k in range(n) for i in range(h) for j in range(w)]
    mu = sum(pixels) / len(pixels)
    return sum(np.outer(v - mu, v - mu) for v in pixels) / (len(pixels) - 1)


def test_rgb_pca_eigenpairs_of_the_pixel_covariance():
    rng = np.random.default_rng(3)
    mix = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.3, 0.3, 0.4]])
    data = np.einsum("ij,njhw->nihw", mix, rng.normal(size=(6, 3, 4, 4)))
    values, vectors = rgb_pca(data)
    cov = covariance_by_hand(data)
    assert values[0] >= values[1] >= values[2] > 0
    for i in range(3):
        np.testing.assert_allclose(cov @ vectors[:, i], values[i] * vectors[:, i], atol=1e-10)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-12)


def test_pca_jitter_moves_colors_along_the_principal_direction_only():
    # colours vary only along d (plus a constant): the covariance has rank 1, lambda_1 = 4 var(t), p_1 = +-d
    d = np.array([1.0, 2.0, -1.0]) / np.sqrt(6.0)
    t = np.random.default_rng(4).normal(size=(300, 1, 3, 3))
    data = 0.5 + 2.0 * t * d[None, :, None, None]
    jitter = PCAColorJitter(std=0.1, data=data)
    out = jitter(data, 0)
    delta = out - data
    per_image = delta[:, :, 0, 0]
    # the same shift for every pixel of an image
    np.testing.assert_allclose(delta, per_image[:, :, None, None] * np.ones_like(delta), atol=1e-12)
    off_axis = per_image - np.outer(per_image @ d, d)
    np.testing.assert_allclose(off_axis, 0.0, atol=1e-10)
    lam = 4.0 * np.var(t, ddof=1)
    alpha = (per_image @ d) / lam  # the shift is alpha * lambda_1 * p_1 with alpha ~ N(0, 0.1^2)
    assert np.std(alpha) == pytest.approx(0.1, rel=0.15)


def test_pca_jitter_alphas_have_the_given_std_on_full_rank_colors():
    rng = np.random.default_rng(5)
    data = np.einsum("ij,njhw->nihw", np.array([[1.0, 0.3, 0.0], [0.2, 0.8, 0.1], [0.0, 0.4, 0.5]]),
                     rng.normal(size=(4000, 3, 2, 2)))
    jitter = PCAColorJitter(std=0.2).fit(data)
    shift = (jitter(data, 1) - data)[:, :, 0, 0]
    alpha = (shift @ jitter.eigenvectors_) / jitter.eigenvalues_  # coordinates along each p_i, over lambda_i
    np.testing.assert_allclose(alpha.std(axis=0), 0.2, rtol=0.06)
    np.testing.assert_allclose(alpha.mean(axis=0), 0.0, atol=0.02)
    # without fit, the batch's own covariance is used: same alphas (same seed), its own eigenpairs
    batch = data[:500]
    vals, vecs = rgb_pca(batch)
    shift_b = (PCAColorJitter(std=0.2)(batch, 7) - batch)[:, :, 0, 0]
    expected = (np.random.default_rng(7).normal(0.0, 0.2, size=(500, 3)) * vals) @ vecs.T
    np.testing.assert_allclose(shift_b, expected, atol=1e-10)


# --- synthetic samples ---------------------------------------------------------------------------------
def test_mix_synthetic_replaces_a_fraction_with_labels():
    x, y = images(n=10), np.arange(10)
    X_syn = np.full((3, 3, 8, 8), 100.0, dtype=np.float32) + np.arange(3, dtype=np.float32)[:, None, None, None]
    y_syn = np.array([70, 71, 72])
    mix = MixSynthetic(X_syn, y_syn, fraction=0.3)
    out, labels = mix(x, y, 0)
    np.testing.assert_array_equal(y, np.arange(10))  # inputs unchanged
    replaced = labels >= 70
    assert replaced.sum() == 3 and np.array_equal(np.flatnonzero(replaced), mix.last_replaced)
    np.testing.assert_array_equal(out[~replaced], x[~replaced])
    np.testing.assert_array_equal(labels[~replaced], y[~replaced])
    for img, lab in zip(out[replaced], labels[replaced]):
        np.testing.assert_array_equal(img, X_syn[lab - 70])  # each image arrives with its own label
    assert mix.apply_batch(x, y, 0)[1].tolist() == labels.tolist()
    assert MixSynthetic(X_syn, y_syn, 1.0)(x, y, 0)[1].min() >= 70
    np.testing.assert_array_equal(MixSynthetic(X_syn, y_syn, 0.0)(x, y, 0)[0], x)


def test_compose_applies_in_order_and_needs_apply_batch_for_labels():
    x = images()
    crop, flip = RandomCrop(6, padding=0), RandomHorizontalFlip(1.0)
    gen = np.random.default_rng(2)
    expected = flip(crop(x, gen), gen)
    np.testing.assert_array_equal(Compose([crop, flip])(x, 2), expected)
    mix = MixSynthetic(np.zeros((2, 3, 6, 6), np.float32), np.array([9, 9]), 0.5)
    both = Compose([crop, mix])
    with pytest.raises(TypeError, match="apply_batch"):
        both(x, 0)
    out, labels = both.apply_batch(x, np.arange(4), 0)
    assert out.shape == (4, 3, 6, 6) and (labels == 9).sum() == 2


def test_augmented_loader_wraps_a_dataloader():
    X, y = images(n=10, c=1), np.arange(10)
    loader = DataLoader(X, y, batch_size=4, shuffle=True, rng=0)
    aug = augmented_loader(loader, RandomHorizontalFlip(1.0), rng=1)
    assert len(aug) == 3 and aug.rng is loader.rng and aug.batch_size == 4
    for xb, yb in aug:
        np.testing.assert_array_equal(xb, X[yb][..., ::-1])  # the flipped images of exactly these labels
    with_fn = augmented_loader(DataLoader(X, y, 5), lambda im, rng: im + rng.normal(), rng=0)
    batches = list(with_fn)
    assert len(batches) == 2 and not np.array_equal(batches[0][0], X[:5])
    np.testing.assert_array_equal(batches[0][1], y[:5])


# --- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, err, match", [
    (lambda: RandomHorizontalFlip()(np.zeros((3, 8, 8), np.float32), 0), ValueError,
     r"4-D batch .* got shape \(3, 8, 8\)"),
    (lambda: RandomCrop(4)(np.zeros((1, 1, 8, 8), np.int64), 0), TypeError, "floating-point images .* int64"),
    (lambda: PCAColorJitter()(np.zeros((2, 1, 4, 4), np.float32), 0), ValueError, "3 channels .* got shape"),
    (lambda: PCAColorJitter().fit(np.zeros((2, 4, 4, 4))), ValueError, "3 channels"),
    (lambda: RandomVerticalFlip()(images(), -2), ValueError, "RandomVerticalFlip: an rng seed must be a non-negative"),
    (lambda: ContrastJitter(0.1)(images(), 1.5), TypeError, "rng must be a numpy.random.Generator"),
    (lambda: RandomCrop(12)(images(), 0), ValueError, r"does not fit in the padded image of size \(8, 8\)"),
    (lambda: RandomCrop(0), ValueError, "size must be >= 1"),
    (lambda: RandomHorizontalFlip(1.5), ValueError, "probability in"),
    (lambda: RandomAffine(degrees=(10, -10)), ValueError, "min <= max"),
    (lambda: RandomAffine(0, translate=(0.5, 2.0)), ValueError, "translate fractions"),
    (lambda: RandomAffine(0, scale=(0.0, 1.0)), ValueError, "scale"),
    (lambda: RandomAffine(0, shear=95), ValueError, "shear"),
    (lambda: affine(images(), 0, scale=0.0), ValueError, "not invertible"),
    (lambda: ContrastJitter(-1), ValueError, "strength"),
    (lambda: MixSynthetic(images(), np.arange(3), 0.5), ValueError, "one label per synthetic image"),
    (lambda: MixSynthetic(images(), np.arange(4), 0.5)(images(h=6), np.arange(4), 0), ValueError,
     "cannot replace"),
    (lambda: Compose([RandomCrop(4), np.flip]), TypeError, "item 1"),
    (lambda: augmented_loader([(1, 2)], 3, rng=0), TypeError, "transform"),
    (lambda: Transform()(images(), 0), NotImplementedError, "does not define _apply"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
