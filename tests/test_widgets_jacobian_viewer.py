"""The Jacobian viewer: its helpers, the model (Jacobians, finite-difference verdict, kinks), the controls,
redraws, and errors shown as text (never a traceback)."""
import numpy as np
import pytest

import widgets
from cnnlab import Module, Sequential
from cnnlab.layers import Linear, ReLU, Tanh
from widgets.jacobian_viewer import (
    JacobianModel,
    compare_with_differences,
    default_net,
    downsample,
    one_sided_jacobians,
)


def toy_images(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 1, 8, 8))


def flat_images(n=3):
    """Dark background with a bright square: pooling windows on the background hold ties."""
    images = np.zeros((n, 1, 8, 8))
    for k in range(n):
        images[k, 0, 2:5, 2 + k:5 + k] = 1.0
    return images


class DoublingIdentity(Module):
    """forward is the identity, backward wrongly doubles the gradient: a bug the viewer must catch."""

    def forward(self, x):
        return x.copy()

    def backward(self, dout):
        return 2 * dout


# --- helpers ----------------------------------------------------------------------------------------
def test_downsample_averages_blocks_of_the_center_crop():
    r, c = np.mgrid[0:28, 0:28]
    image = (28 * r + c).astype(float)[None, None]
    small = downsample(image, 8)
    assert small.shape == (1, 1, 8, 8)
    # 28 // 8 = 3: rows and columns 2..25 are kept; block (i, j) covers rows 2+3i..4+3i, so its mean
    # is 28 * (3 + 3i) + (3 + 3j)
    i, j = np.mgrid[0:8, 0:8]
    np.testing.assert_allclose(small[0, 0], 28 * (3 + 3 * i) + (3 + 3 * j))
    with pytest.raises(ValueError, match=r"square images of shape \(N, C, H, H\), got \(1, 28, 28\)"):
        downsample(image[0], 8)


def test_one_sided_differences_see_a_kink_that_the_centered_one_averages_away():
    x = np.array([1.0, 0.0])

    def f():
        return np.array([x[0] ** 2, abs(x[1])])

    forward, backward = one_sided_jacobians(f, x, eps=1e-4)
    np.testing.assert_allclose(forward, [[2.0, 0.0], [0.0, 1.0]], atol=2e-4)   # slope of x^2 is 2; |.| right: 1
    np.testing.assert_allclose(backward, [[2.0, 0.0], [0.0, -1.0]], atol=2e-4)  # |.| left: -1
    np.testing.assert_array_equal(x, [1.0, 0.0])  # restored


def test_compare_with_differences_accepts_a_one_sided_slope_at_a_kink_and_finds_errors():
    central = np.array([[2.0, 0.0]])
    forward, backward = np.array([[2.0, 1.0]]), np.array([[2.0, -1.0]])  # entry (0, 1) is a kink
    ok = compare_with_differences(np.array([[2.0, 1.0]]), central, forward, backward)
    assert ok.ok and ok.kinks == 1 and ok.max_abs_error == 0.0
    outside = compare_with_differences(np.array([[2.0, 3.0]]), central, forward, backward)
    assert not outside.ok and not outside.kinks_ok
    wrong = compare_with_differences(np.array([[2.5, 0.0]]), central, forward, backward)
    assert not wrong.ok and wrong.where == (0, 0) and wrong.max_abs_error == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one shape"):
        compare_with_differences(np.zeros((2, 2)), central, forward, backward)


def test_default_net_has_the_documented_layers_and_shapes():
    net = default_net(0)
    assert [type(layer).__name__ for layer in net] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert net.forward(np.zeros((1, 1, 8, 8))).shape == (1, 3)
    assert all(p.dtype == np.float64 for p in net.parameters())


# --- the model ----------------------------------------------------------------------------------------
def test_model_jacobians_of_a_tanh_layer_match_the_hand_formula():
    lin = Linear(3, 2, rng=4)
    x = np.array([[0.3, -1.2, 0.7]])
    model = JacobianModel(Sequential([lin, Tanh()]), x=x)
    W, b = lin.weight.data.astype(np.float64), lin.bias.data.astype(np.float64)
    # layer 0 (Linear): J_x = W, J_w[i, (q, j)] = delta_iq x_j then delta_iq for the bias
    np.testing.assert_allclose(model.J_x, W, rtol=1e-12)
    expected_w = np.zeros((2, 8))
    expected_w[0, 0:3], expected_w[1, 3:6], expected_w[0, 6], expected_w[1, 7] = x[0], x[0], 1.0, 1.0
    np.testing.assert_allclose(model.J_w, expected_w)
    assert model.matches and model.max_abs_error < 1e-8
    # layer 1 (Tanh) at a = W x + b: diagonal 1 - tanh(a)^2, no parameters
    model.layer_index = 1
    model.update()
    a = W @ x[0] + b
    np.testing.assert_allclose(model.J_x, np.diag(1 - np.tanh(a) ** 2), rtol=1e-6)
    np.testing.assert_allclose(model.x_in[0], a, rtol=1e-6)
    assert model.J_w.shape == (2, 0) and model.sv_w.size == 0
    np.testing.assert_allclose(model.sv_x, np.sort(1 - np.tanh(a) ** 2)[::-1], rtol=1e-6)


def test_model_badge_fails_for_a_wrong_backward():
    model = JacobianModel(Sequential([DoublingIdentity()]), x=np.array([[0.5, -0.25, 2.0]]))
    np.testing.assert_allclose(model.J_x, 2 * np.eye(3))          # what the buggy backward claims
    np.testing.assert_allclose(model.J_x_numeric, np.eye(3), atol=1e-8)  # what is true
    assert not model.matches and model.check_x.max_abs_error == pytest.approx(1.0, abs=1e-6)


def test_model_accepts_ties_in_max_pooling_as_kinks():
    model = JacobianModel(default_net(0), images=flat_images())
    model.layer_index = 2  # MaxPool2d after ReLU: flat background -> equal values in a window
    model.update()
    assert model.check_x.kinks > 0
    assert model.matches
    assert (model.J_x.sum(axis=1) == 1).all()


def test_model_works_on_a_copy_and_leaves_the_users_net_alone():
    net = Sequential([Linear(4, 2, rng=1), ReLU()])
    before = net[0].weight.data.copy()
    model = JacobianModel(net, x=np.ones((1, 4), dtype=np.float32))
    assert net[0].weight.data.dtype == np.float32 and np.array_equal(net[0].weight.data, before)
    assert model.net[0].weight.data.dtype == np.float64


def test_model_inputs_from_images_and_seeds():
    images = toy_images()
    model = JacobianModel(default_net(0), images=images)
    assert model.sources == ["image", "random"] and model.source == "image"
    model.sample = 3
    model.update()
    np.testing.assert_array_equal(model.x, images[3:4])
    model.source, model.sample = "random", 5
    model.update()
    np.testing.assert_array_equal(model.x, np.random.default_rng(5).standard_normal((1, 1, 8, 8)))
    np.testing.assert_array_equal(images, toy_images())  # the images were not perturbed


def test_model_refuses_bad_inputs_with_what_was_received():
    net = default_net(0)
    with pytest.raises(TypeError, match="cnnlab Sequential.*got Linear"):
        JacobianModel(Linear(2, 2), x=np.ones((1, 2)))
    with pytest.raises(ValueError, match="empty Sequential"):
        JacobianModel(Sequential([]), x=np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"batch axis of 1.*got shape \(2, 1, 8, 8\)"):
        JacobianModel(net, x=np.ones((2, 1, 8, 8)))
    with pytest.raises(TypeError, match="float numpy array, got int64"):
        JacobianModel(net, x=np.ones((1, 1, 8, 8), dtype=np.int64))
    with pytest.raises(ValueError, match=r"net cannot take an input of shape \(1, 1, 6, 6\)"):
        JacobianModel(net, x=np.ones((1, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"images of shape \(1, 4, 4\) do not match x of shape \(1, 8, 8\)"):
        JacobianModel(net, x=np.ones((1, 1, 8, 8)), images=np.ones((3, 1, 4, 4)))
    with pytest.raises(ValueError, match="pass x .* or images"):
        JacobianModel(net)


# --- the widget -----------------------------------------------------------------------------------
def test_choosing_a_layer_updates_model_figure_and_badge():
    viewer = widgets.jacobian_viewer(images=toy_images())
    png, draws = viewer.view.widget.value, viewer.view.draws
    assert viewer.model.J_x.shape == (128, 64) and "\u2713" in viewer.badge.value
    viewer.layer.value = 4  # Linear(32, 3)
    assert viewer.model.layer_index == 4
    assert viewer.model.J_x.shape == (3, 32) and viewer.model.J_w.shape == (3, 99)
    assert viewer.view.draws > draws and viewer.view.widget.value != png
    np.testing.assert_array_equal(viewer.jx_image.get_array(), viewer.model.J_x)
    assert viewer.jw_image.get_visible()
    lo, hi = viewer.jx_image.get_clim()
    assert lo == -hi == -np.abs(viewer.model.J_x).max()  # the colour map is centred at 0
    np.testing.assert_allclose(viewer.sv_x_line.get_ydata(), np.linalg.svd(viewer.model.J_x, compute_uv=False))
    viewer.layer.value = 1  # ReLU: no parameters
    assert not viewer.jw_image.get_visible() and viewer.jw_empty.get_visible()
    assert "ReLU" in viewer.status.text and "no parameters" in viewer.status.text


def test_switching_to_random_inputs_and_moving_the_seed():
    viewer = widgets.jacobian_viewer(images=toy_images())
    viewer.source.value = "random"
    assert viewer.sample.description == "seed" and viewer.sample.max == 99 and viewer.sample.value == 0
    first = viewer.model.x.copy()
    draws = viewer.view.draws
    viewer.sample.value = 4
    assert viewer.model.sample == 4 and not np.array_equal(viewer.model.x, first)
    np.testing.assert_array_equal(viewer.input_image.get_array(), viewer.model.x[0, 0])
    assert viewer.view.draws > draws
    draws = viewer.view.draws
    viewer.source.value = "image"
    assert viewer.sample.description == "image #" and viewer.sample.max == 3 and viewer.sample.value == 0
    assert viewer.view.draws == draws + 1, "one redraw for one change of source"
    np.testing.assert_array_equal(viewer.model.x, toy_images()[:1])


def test_the_badge_turns_red_for_a_wrong_backward():
    viewer = widgets.jacobian_viewer(Sequential([Linear(3, 3, rng=0), DoublingIdentity()]),
                                     x=np.array([[0.1, 0.2, 0.3]]))
    assert "\u2713" in viewer.badge.value
    viewer.layer.value = 1
    assert "\u2717" in viewer.badge.value and "#cf222e" in viewer.badge.value
    assert "max |error| 1" in viewer.badge.value
    assert viewer.status.kind == "warn"


def test_a_failing_update_becomes_a_status_message_not_an_exception():
    big = Sequential([Linear(2, 3, rng=0), Linear(3, 700, rng=1)])
    viewer = widgets.jacobian_viewer(big, x=np.ones((1, 2)))
    viewer.layer.value = 1  # 700 x (3 + 2,800) entries: refused, shown as text
    assert viewer.status.kind == "error" and "more than" in viewer.status.text


def test_a_broken_model_update_is_caught(monkeypatch):
    viewer = widgets.jacobian_viewer(images=toy_images())

    def broken():
        raise RuntimeError("the model could not update")

    monkeypatch.setattr(viewer.model, "update", broken)
    viewer.layer.value = 2  # must not raise
    assert viewer.status.kind == "error" and "could not update" in viewer.status.text


def test_custom_input_offers_your_input_and_disables_the_slider():
    net = Sequential([Linear(4, 2, rng=0), Tanh()])
    viewer = widgets.jacobian_viewer(net, x=np.ones((1, 4)))
    assert viewer.source.value == "custom" and viewer.sample.disabled
    assert [value for _, value in viewer.source.options] == ["custom", "random"]
    viewer.source.value = "random"
    assert not viewer.sample.disabled and viewer.model.x.shape == (1, 4)


def test_factory_without_arguments_uses_fashion_mnist_at_8x8():
    viewer = widgets.jacobian_viewer()
    assert viewer.model.images.shape == (20, 1, 8, 8)
    assert 0.0 <= viewer.model.images.min() and viewer.model.images.max() <= 1.0
    assert viewer.model.matches


def test_every_layer_shows_the_picture_of_a_full_draw_and_a_layer_seen_before_blits():
    viewer = widgets.jacobian_viewer(n_images=4)
    shown = {}
    for index in (1, 0, 4, 1, 0, 4):  # no parameters, parameters, ...: J_w's axis lines and colour bar come and go
        full = viewer.view.full_draws
        viewer.layer.value = index
        if index in shown:
            assert viewer.view.full_draws == full, f"layer {index} was drawn before: its saved picture blits"
            assert viewer.view.widget.value == shown[index]
        shown[index] = viewer.view.widget.value
    for index in (1, 0, 4):
        viewer.layer.value = index
        viewer.view.invalidate()
        viewer.view.refresh()
        assert viewer.view.widget.value == shown[index], f"layer {index}: the picture shown equals a full draw"


def test_the_model_keeps_results_for_inputs_seen_and_they_equal_a_fresh_computation(monkeypatch):
    from cnnlab.jacobian import numerical_jacobian

    model = JacobianModel(default_net(0), images=toy_images())
    model.layer_index = 4  # Linear: J_x and J_w
    model.update()
    x_in = model.x_in.copy()
    # the centred differences are the mean of the one-sided ones: those of numerical_jacobian, up to rounding
    np.testing.assert_allclose(model.J_x_numeric, numerical_jacobian(lambda: model.layer.forward(x_in), x_in),
                               atol=1e-9)
    first = {name: np.array(getattr(model, name)) for name in ("J_x", "J_w", "J_x_numeric", "J_w_numeric", "sv_x")}
    model.sample = 1
    model.update()
    model.sample = 0
    monkeypatch.setattr(model, "_compute", lambda *args: 1 / 0)  # seen before: nothing is computed
    model.update()
    monkeypatch.undo()
    for name, value in first.items():
        np.testing.assert_array_equal(getattr(model, name), value, err_msg=name)
    assert not model.J_x.flags.writeable  # the kept results cannot be changed by accident
    model.net[4].weight.data[0, 0] += 1.0  # another weight: computed again, not taken from the cache
    model.update()
    assert model.J_x[0, 0] == pytest.approx(first["J_x"][0, 0] + 1.0)
