"""The filter viewer: normalisation ranges, gradient maps = backward of a one-hot gradient, every control."""
import hashlib
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
from widget_checks import drive_controls

from cnnlab import Module, Sequential
from cnnlab.layers import BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.models import default_cnn
from widgets.filter_viewer import (
    FilterViewer,
    FilterViewerModel,
    filter_mosaic,
    filter_viewer,
    mosaic,
    reference_net,
    to_unit_range,
)

fv_module = importlib.import_module("widgets.filter_viewer")  # `widgets.filter_viewer` is also the factory

DATA = Path(__file__).resolve().parents[1] / "data"


def small_net(dtype=np.float64, seed=0):
    gen = np.random.default_rng(seed)
    net = Sequential(Conv2d(1, 3, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
                     Conv2d(3, 4, 3, rng=gen), ReLU(), Flatten(), Linear(4 * 2 * 2, 5, rng=gen))
    return net.astype(dtype)


def images(n=3, seed=1, dtype=np.float64):
    return np.random.default_rng(seed).random((n, 1, 8, 8)).astype(dtype)


# --- normalisation ------------------------------------------------------------------------------------
def test_to_unit_range_by_hand():
    tiles = np.array([[[1.0, -2.0], [0.5, 0.25]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.5], [-0.25, 0.0]]])
    local, scale = to_unit_range(tiles, "local")
    np.testing.assert_allclose(scale, [2.0, 1.0, 0.5])  # an all-zero tile keeps scale 1
    np.testing.assert_allclose(local[0], [[0.5, -1.0], [0.25, 0.125]])
    np.testing.assert_allclose(local[1], 0.0)
    np.testing.assert_allclose(local[2], [[0.0, 1.0], [-0.5, 0.0]])
    layer, scale = to_unit_range(tiles, "layer")
    assert scale == 2.0
    np.testing.assert_allclose(layer[2], [[0.0, 0.25], [-0.125, 0.0]])
    glob, scale = to_unit_range(tiles, "global", global_max=4.0)
    assert scale == 4.0
    np.testing.assert_allclose(glob[0], [[0.25, -0.5], [0.125, 0.0625]])
    with pytest.raises(ValueError, match="smaller than this layer's max"):
        to_unit_range(tiles, "global", global_max=1.0)
    with pytest.raises(ValueError, match="normalisation must be one of"):
        to_unit_range(tiles, "sqrt")


@pytest.mark.parametrize("norm", ["local", "layer", "global"])
def test_each_mode_gives_its_documented_range_for_every_layer(norm):
    model = FilterViewerModel(small_net(), images())
    model.norm = norm
    peaks = {}
    for layer in range(len(model.convs)):
        model.layer = layer
        model.update()
        for kind, raw in (("filters", model.weights), ("maps", model.maps), ("grads", model.grads)):
            shown, scale = model.shown[kind]
            assert np.all(np.abs(shown) <= 1 + 1e-12), (kind, layer)
            np.testing.assert_allclose(shown * np.reshape(scale, (-1,) + (1,) * (shown.ndim - 1)), raw[layer])
            peak = np.abs(shown).reshape(len(shown), -1).max(axis=1)
            if norm == "local":  # every tile that is not all zero reaches 1
                np.testing.assert_allclose(peak[peak > 0], 1.0)
            elif norm == "layer":
                assert np.isclose(peak.max(), 1.0)
            else:
                np.testing.assert_allclose(scale, max(np.abs(a).max() for a in raw))
            peaks.setdefault(kind, []).append(peak.max())
    if norm == "global":  # one layer holds the overall maximum; the others stay below it
        for kind, values in peaks.items():
            assert np.isclose(max(values), 1.0), kind


def test_mosaics_place_tiles_with_gaps():
    tiles = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    m = mosaic(tiles)  # 3 columns x 2 rows with 1-pixel gaps
    assert m.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_array_equal(m[0:2, 4:7], tiles[1])
    np.testing.assert_array_equal(m[3:5, 0:3], tiles[3])
    assert np.isnan(m[2]).all() and np.isnan(m[3:5, 8:11]).all()  # a gap row, an empty slot
    weight = np.arange(4 * 2 * 3 * 3, dtype=float).reshape(4, 2, 3, 3)
    grid = filter_mosaic(weight)  # one column per filter, one row per input channel
    assert grid.shape == (2 * 4 - 1, 4 * 4 - 1)
    np.testing.assert_array_equal(grid[4:7, 8:11], weight[2, 1])


# --- gradient maps ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [None, 2])
def test_gradient_maps_are_backward_of_a_one_hot_gradient(target):
    net, x = small_net(), images()
    model = FilterViewerModel(net, x)
    model.image, model.target = 1, target
    model.update()
    for k, position in enumerate([0, 3]):  # the two Conv2d layers sit at positions 0 and 3
        head, tail = Sequential(net.layers[:position + 1]), Sequential(net.layers[position + 1:])
        a = head.forward(x[1:2])
        scores = tail.forward(a)
        c = int(np.argmax(scores)) if target is None else target
        assert model.target_class == c
        upstream = np.zeros_like(scores)
        upstream[0, c] = 1.0
        expected = tail.backward(upstream)[0]
        np.testing.assert_allclose(model.maps[k], a[0], rtol=1e-12)
        np.testing.assert_allclose(model.grads[k], expected, rtol=1e-10, atol=1e-14)
        # and it is the derivative of the class score: centred differences on a few entries
        h, rng = 1e-6, np.random.default_rng(k)
        for idx in zip(*(rng.integers(0, n, 4) for n in a.shape[1:])):
            bumped = [a.copy(), a.copy()]
            bumped[0][(0, *idx)] += h
            bumped[1][(0, *idx)] -= h
            slope = (tail.forward(bumped[0])[0, c] - tail.forward(bumped[1])[0, c]) / (2 * h)
            assert np.isclose(model.grads[k][idx], slope, atol=1e-6)


def test_the_viewer_leaves_the_nets_gradients_and_mode_alone():
    gen = np.random.default_rng(3)
    net = Sequential(Conv2d(1, 2, 3, padding=1, rng=gen), BatchNorm2d(2), ReLU(), Dropout(0.5, rng=gen),
                     Flatten(), Linear(2 * 8 * 8, 3, rng=gen))
    net.train()
    net[1].eval()  # a mix of modes (a frozen batch norm) survives too
    sentinels = [np.full(p.shape, 7.0, dtype=p.dtype) for p in net.parameters()]
    for p, s in zip(net.parameters(), sentinels):
        p.grad[...] = s
    model = FilterViewerModel(net, images(dtype=np.float32))
    model.target = 1
    model.update()
    assert [m.training for m in net.modules()] == [True, True, False, True, True, True, True]
    for p, s in zip(net.parameters(), sentinels):
        np.testing.assert_array_equal(p.grad, s)
    assert np.abs(model.grads[0]).sum() > 0


# --- the widget ---------------------------------------------------------------------------------------------
def artists_state(viewer):
    return ([np.asarray(im.get_array(), dtype=float).copy() for im in [viewer.input_tile, *viewer.panel_images]]
            + [ax.get_title() for ax in [viewer.ax_input, *viewer.panel_axes]])



def test_every_control_changes_the_figure_without_an_error(monkeypatch):
    viewer = filter_viewer(small_net(np.float32), images(4, dtype=np.float32), labels=[0, 1, 2, 3])
    monkeypatch.setattr(viewer.view, "refresh", lambda: setattr(viewer.view, "draws", viewer.view.draws + 1))
    drives = [(viewer.layer, [1, 0]), (viewer.image, [viewer.image.max, 0]),
              (viewer.target, [v for _, v in viewer.target.options][1:] + [-1]),
              (viewer.norm, ["local", "global", "layer"])]

    def redrew_once(control, value, draws):
        assert viewer.view.draws == draws + 1, (control.description, value)

    drive_controls(viewer, drives, artists_state, after=redrew_once)
    assert viewer.model.layer == 0 and viewer.model.norm == "layer" and viewer.model.target is None


def test_a_control_change_renders_a_new_picture():
    viewer = filter_viewer(small_net(np.float32), images(dtype=np.float32))
    before = viewer.view.widget.value
    viewer.norm.value = "local"
    assert viewer.view.widget.value != before


def test_a_broken_update_is_a_message():
    viewer = filter_viewer(small_net(np.float32), images(dtype=np.float32))
    viewer.model.update = lambda: 1 / 0
    viewer.layer.value = 1
    assert viewer.status.kind == "error" and "division by zero" in viewer.status.text


# --- bad input ----------------------------------------------------------------------------------------------
class Doubler(Module):
    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        return 2 * dout


def test_bad_net_or_x_is_a_clear_error():
    x = images(dtype=np.float32)
    with pytest.raises(ValueError, match="has no cnnlab.layers.Conv2d layer"):
        filter_viewer(Sequential(Flatten(), Linear(64, 3)), x)
    with pytest.raises(ValueError, match="has no cnnlab.layers.Conv2d layer"):
        filter_viewer(Doubler(), x)
    with pytest.raises(TypeError, match="expects a cnnlab network"):
        filter_viewer(lambda x: x, x)
    net = small_net(np.float32)
    with pytest.raises(ValueError, match=r"one image \(C, H, W\) or a batch .* got shape \(8, 8\)"):
        filter_viewer(net, x[0, 0])
    with pytest.raises(ValueError, match=r"cannot process images of shape \(3, 8, 8\).*3 channels"):
        filter_viewer(net, np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(TypeError, match="numeric image array"):
        filter_viewer(net, np.array([["a"]]))
    with pytest.raises(ValueError, match=r"class scores of shape \(N, K\).*\(1, 2, 8, 8\)"):
        filter_viewer(Sequential(Conv2d(1, 2, 3, padding=1)), x)
    with pytest.raises(ValueError, match="classes has 2 names but the net gives 5"):
        filter_viewer(net, x, classes=["a", "b"])
    with pytest.raises(ValueError, match=r"labels must be 3 integers in \[0, 5\)"):
        filter_viewer(net, x, labels=[0, 1, 9])
    model = FilterViewerModel(net, x)
    model.layer = 2
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\), got 2"):
        model.update()


def test_one_image_without_a_batch_axis_works():
    viewer = filter_viewer(small_net(np.float32), images(dtype=np.float32)[0])
    assert viewer.model.x.shape == (1, 1, 8, 8) and viewer.image.disabled


# --- the reference net -----------------------------------------------------------------------------------------
def test_with_no_arguments_it_shows_the_trained_reference_net():
    viewer = filter_viewer()
    model = viewer.model
    assert [tuple(m.weight.shape) for _, m in model.convs] == [(8, 1, 5, 5), (16, 8, 3, 3)]
    assert model.x.shape[1:] == (1, 28, 28) and model.labels is not None
    scores = model.net.forward(model.x[:300])
    assert np.mean(scores.argmax(axis=1) == model.labels[:300]) > 0.7  # trained: far above chance (0.1)
    assert "input 0: " + model.classes[model.labels[0]] in viewer.ax_input.get_title()


def test_the_shipped_weights_match_the_readme_checksum():
    path = DATA / "filter_viewer_weights.npz"
    readme = (DATA / "README.md").read_text()
    recorded = re.search(r"filter_viewer_weights\.npz\s*\|[^|]*\|\s*([0-9a-f]{64})\s*\|", readme)
    assert recorded, "data/README.md lists the SHA-256 of filter_viewer_weights.npz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded.group(1)
    assert path.stat().st_size < 200_000


def test_without_the_file_the_reference_net_is_trained_once(monkeypatch, tmp_path):
    real, calls = fv_module.train_reference_net, []

    def quick(epochs, rng=0):  # the real recipe, cut to 3 steps
        calls.append(epochs)
        return real(epochs=epochs, rng=rng, steps=3)

    monkeypatch.setattr(fv_module, "WEIGHTS", tmp_path / "missing.npz")
    monkeypatch.setattr(fv_module, "_REFERENCE", {})
    monkeypatch.setattr(fv_module, "train_reference_net", quick)
    net = reference_net()
    assert reference_net() is net and calls == [2]  # trained once, then cached
    assert not np.array_equal(net[0].weight.data, default_cnn(0)[0].weight.data)


def test_the_controls_show_the_models_settings_and_keep_them():
    model = FilterViewerModel(small_net(), images())
    model.layer, model.image, model.target, model.norm = 1, 2, 3, "global"  # set before the widget is built
    viewer = FilterViewer(model)
    assert (viewer.layer.value, viewer.image.value, viewer.target.value, viewer.norm.value) == (1, 2, 3, "global")
    assert (model.layer, model.image, model.target, model.norm) == (1, 2, 3, "global")
