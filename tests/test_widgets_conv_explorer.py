"""The convolution explorer: kernels, the model's numbers against hand computations, controls, redraws,
errors shown as text (never a traceback), and bad factory input refused with a clear ValueError."""
import numpy as np
import pytest

import widgets
from widgets.conv_explorer import (
    DELTAS,
    KERNELS,
    ConvExplorerModel,
    conv_explorer,
    kernel_preset,
    synthetic_image,
)


def image(h=9, w=8, seed=0):
    return np.random.default_rng(seed).random((h, w))


def correlate_valid(x, k):
    """Independent 'valid' cross-correlation by explicit sums (not cnnlab's code)."""
    kh, kw = k.shape
    return np.array([[sum(x[i + a, j + b] * k[a, b] for a in range(kh) for b in range(kw))
                      for j in range(x.shape[1] - kw + 1)] for i in range(x.shape[0] - kh + 1)])


def test_kernel_presets_are_the_textbook_filters():
    np.testing.assert_array_equal(kernel_preset("vertical edge", 3), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(kernel_preset("horizontal edge", 3), [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    np.testing.assert_array_equal(kernel_preset("vertical edge", 2), [[-1, 1], [-1, 1]])
    np.testing.assert_allclose(kernel_preset("blur", 4), np.full((4, 4), 1 / 16))
    # an edge detector does not respond to a constant image: its entries sum to zero at every size
    for k in range(2, 8):
        assert kernel_preset("vertical edge", k).sum() == 0 and kernel_preset("horizontal edge", k).sum() == 0
    a, b = kernel_preset("random", 5, seed=3), kernel_preset("random", 5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, kernel_preset("random", 5, seed=4))
    with pytest.raises(ValueError, match=r"kernel must be one of .*got 'sharpen'"):
        kernel_preset("sharpen", 3)
    with pytest.raises(ValueError, match=r"int in \[2, 7\], got 9"):
        kernel_preset("blur", 9)


def test_synthetic_images():
    square, stripes = synthetic_image("square"), synthetic_image("stripes")
    assert square.shape == stripes.shape == (28, 28)
    assert square[14, 14] == 1 and square[0, 0] == 0
    np.testing.assert_array_equal(stripes[0, :8], [0, 0, 0, 0, 1, 1, 1, 1])
    assert (stripes == stripes[0]).all(), "vertical stripes: every row is the same"


def test_model_forward_and_gradients_match_hand_computations():
    x = image()
    m = ConvExplorerModel(x, "random", kernel_size=3, stride=2, padding=1, seed=1)
    m.row, m.col = 2, 1
    m.update()
    xp = np.pad(x, 1)
    k = m.kernel
    dense = correlate_valid(xp, k)
    np.testing.assert_allclose(m.out, dense[::2, ::2], atol=1e-12)
    assert m.out_shape == ((9 + 2 - 3) // 2 + 1, (8 + 2 - 3) // 2 + 1) == (5, 4)
    top, left = m.field
    assert (top, left) == (4, 2)
    # delta is one-hot at (2, 1): dW is the patch that output read, dX a copy of the kernel there
    np.testing.assert_allclose(m.dw, xp[4:7, 2:5])
    dxp = np.zeros_like(xp)
    dxp[4:7, 2:5] = k
    np.testing.assert_allclose(m.dx, dxp[1:-1, 1:-1])
    assert m.unused == ((9 + 2 - 3) % 2, (8 + 2 - 3) % 2) == (0, 1)
    assert "(9 + 2·1 - 3) // 2 + 1 = 5" in m.formula


def test_all_outputs_delta_sums_every_window():
    x = image(6, 6)
    m = ConvExplorerModel(x, "blur", kernel_size=2, delta_mode="all outputs")
    np.testing.assert_allclose(m.delta, np.ones((5, 5)))
    # every pixel receives 1/4 from each window that covers it: 1 window at a corner, 4 inside
    assert m.dx[0, 0] == pytest.approx(0.25) and m.dx[2, 2] == pytest.approx(1.0)
    np.testing.assert_allclose(m.dw, [[x[a:a + 5, b:b + 5].sum() for b in range(2)] for a in range(2)])


def test_model_clamps_the_position_and_rejects_what_does_not_fit():
    m = ConvExplorerModel(image(), "blur", kernel_size=3)
    m.row, m.col = 100, -3
    m.update()
    assert (m.row, m.col) == (6, 0)
    m.kernel_size = 7
    m.image = np.ones((4, 4))
    with pytest.raises(ValueError, match=r"7x7 kernel does not fit in the 4x4 image padded by 0 \(4x4\)"):
        m.update()
    m.kernel_size, m.delta_mode = 3, "some outputs"
    with pytest.raises(ValueError, match=r"delta_mode must be one of"):
        m.update()


def test_sliders_update_model_sliders_and_figure():
    e = conv_explorer(image="square")
    before = e.view.widget.value, e.view.draws
    e.kernel_size.value = 5
    assert e.model.kernel_size == 5 and e.model.out_shape == (24, 24)
    assert e.row.max == 23 and e.col.max == 23
    assert e.view.draws > before[1] and e.view.widget.value != before[0]
    assert e.artists[1].get_array().shape == (5, 5)
    e.padding.value = 2
    assert e.model.out_shape == (28, 28), "padding (K - 1) / 2 keeps the size"
    e.row.value, e.col.value = 27, 27
    e.stride.value = 3
    assert e.model.out_shape == (10, 10)  # (28 + 4 - 5) // 3 + 1
    assert (e.model.row, e.model.col) == (9, 9) and e.row.value == 9 and e.row.max == 9
    np.testing.assert_array_equal(e.artists[2].get_array(), e.model.out)
    assert "unread" not in e.status.text  # 27 % 3 == 0: every padded row is read
    e.stride.value = 2
    assert e.model.out_shape == (14, 14) and "last 1 row(s) and 1 column(s)" in e.status.text


def test_pickers_change_image_kernel_and_delta():
    e = conv_explorer(image="square", kernel="vertical edge")
    e.image_picker.value = "stripes"
    np.testing.assert_array_equal(e.model.image, synthetic_image("stripes"))
    # vertical stripes have no horizontal edges: the horizontal-edge output is zero everywhere
    e.kernel_picker.value = "horizontal edge"
    np.testing.assert_allclose(e.model.out, 0.0)
    e.kernel_picker.value = "vertical edge"
    assert np.abs(e.model.out).max() == 4.0  # one column step of height 1 under weights 1 + 2 + 1
    draws = e.view.draws
    e.delta_mode.value = "all outputs"
    assert e.view.draws == draws + 1 and (e.model.delta == 1).all()
    assert not e.field_box.get_visible()
    e.delta_mode.value = "one output"
    assert e.field_box.get_visible() and e.model.delta.sum() == 1


def test_the_kernel_numbers_are_written_only_for_small_kernels():
    e = conv_explorer(image="square", kernel="blur", kernel_size=3)
    assert len(e.kernel_texts) == 9 and e.kernel_texts[0].get_text() == "0.11"
    e.kernel_size.value = 6
    assert e.kernel_texts == [] and len(e.axes[1].texts) == 0


def test_a_failing_update_becomes_a_status_message_not_an_exception(monkeypatch):
    e = conv_explorer(image="square")

    def broken():
        raise RuntimeError("the layer could not run")

    monkeypatch.setattr(e.model, "update", broken)
    e.stride.value = 2  # must not raise
    assert e.status.kind == "error" and "could not run" in e.status.text


def test_a_kernel_too_large_for_a_small_image_is_reported_in_the_status_line():
    e = conv_explorer(image=np.ones((1, 1, 4, 5)), kernel_size=3)
    assert list(e.images)[0] == "your image" and e.model.out_shape == (2, 3)
    e.kernel_size.value = 6
    assert e.status.kind == "error" and "6x6 kernel does not fit" in e.status.text
    e.padding.value = 1
    assert e.status.kind == "info" and e.model.out_shape == (1, 2)


def test_the_default_image_is_a_fashion_mnist_ankle_boot():
    e = widgets.conv_explorer()
    name = e.image_picker.value
    assert name == "Fashion-MNIST: Ankle boot"
    assert e.model.image.shape == (28, 28) and 0 <= e.model.image.min() and e.model.image.max() <= 1
    assert set(e.image_picker.options) == {name, "square", "stripes"}
    assert "application/vnd.jupyter.widget-view+json" in e._repr_mimebundle_()


@pytest.mark.parametrize("kwargs, message", [
    (dict(image="cat"), r"image must be 'fashion', one of \('square', 'stripes'\) or an array, got 'cat'"),
    (dict(image=np.ones((2, 3, 4))), r"shape \(H, W\), \(1, H, W\) or \(1, 1, H, W\).*got \(2, 3, 4\)"),
    (dict(image=np.full((5, 5), np.nan)), r"NaN or infinity"),
    (dict(kernel="sharpen"), r"kernel must be one of .*got 'sharpen'"),
    (dict(kernel_size=1), r"kernel_size must be an int in \[2, 7\], got 1"),
    (dict(stride=0), r"stride must be an int in \[1, 4\], got 0"),
    (dict(padding=2.5), r"padding must be an int in \[0, 3\], got 2.5"),
    (dict(rng=-1), r"rng must be a non-negative int seed, got -1"),
])
def test_bad_factory_input_is_refused_with_what_was_received(kwargs, message):
    kwargs.setdefault("image", "square")
    with pytest.raises(ValueError, match=message):
        conv_explorer(**kwargs)


def test_constants_cover_the_controls():
    e = conv_explorer(image="square")
    assert tuple(e.kernel_picker.options) == KERNELS and tuple(e.delta_mode.options) == DELTAS
