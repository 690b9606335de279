"""The dataset gallery: model, controls, redraws, and errors shown as text (never a traceback)."""
import numpy as np
import pytest

import widgets
from widgets.gallery import ALL, GalleryModel

CLASSES = tuple(f"class {k}" for k in range(4))


def toy_data(n=37, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, 6, 5)).astype(np.float32)
    y = rng.integers(0, 4, n)
    return X, y


def test_model_shows_only_the_chosen_class_and_its_mean():
    X, y = toy_data()
    m = GalleryModel(X, y, CLASSES, n=3)
    m.class_index, m.start = 2, 1
    m.update()
    members = np.flatnonzero(y == 2)
    np.testing.assert_array_equal(m.indices, members[1:4])
    assert (m.labels == 2).all() and m.count == len(members)
    np.testing.assert_allclose(m.mean_image, X[members, 0].mean(axis=0), rtol=1e-6)


def test_model_clamps_start_to_the_last_full_page():
    X, y = toy_data()
    m = GalleryModel(X, y, CLASSES, n=5)
    m.start = 10_000
    m.update()
    assert m.start == len(y) - 5 and len(m.indices) == 5


def test_model_rejects_bad_inputs_with_what_was_received():
    X, y = toy_data()
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\) or \(N, H, W\), got \(37, 30\)"):
        GalleryModel(X.reshape(37, 30), y, CLASSES)
    with pytest.raises(ValueError, match=r"shape \(37,\) to match the images, got \(36,\)"):
        GalleryModel(X, y[:-1], CLASSES)
    with pytest.raises(ValueError, match=r"integers in \[0, 4\).*range \[0, 7\]"):
        GalleryModel(X, np.where(y == 3, 7, y), CLASSES)


def test_choosing_a_class_updates_model_slider_and_figure():
    X, y = toy_data()
    g = widgets.dataset_gallery(X, y, CLASSES, n=4)
    before = g.view.widget.value, g.view.draws
    g.class_picker.value = 1
    assert g.model.class_index == 1 and (g.model.labels == 1).all()
    assert g.start.max == max((y == 1).sum() - 4, 0)
    assert g.view.draws > before[1] and g.view.widget.value != before[0]
    np.testing.assert_array_equal(g.tiles[0].get_array(), X[np.flatnonzero(y == 1)[0], 0])
    assert "class 1" in g.status.text


def test_moving_the_slider_pages_through_examples():
    X, y = toy_data()
    g = widgets.dataset_gallery(X, y, CLASSES, n=4)
    g.start.value = 3
    assert g.model.start == 3
    np.testing.assert_array_equal(g.model.indices, np.arange(3, 7))
    np.testing.assert_array_equal(g.tiles[0].get_array(), X[3, 0])


def test_a_failing_callback_becomes_a_status_message_not_an_exception(monkeypatch):
    X, y = toy_data()
    g = widgets.dataset_gallery(X, y, CLASSES, n=4)

    def broken():
        raise RuntimeError("the model could not update")

    monkeypatch.setattr(g.model, "update", broken)
    g.class_picker.value = 2  # must not raise
    assert g.status.kind == "error" and "could not update" in g.status.text


def test_gallery_without_labels_is_refused():
    X, _ = toy_data()
    with pytest.raises(ValueError, match="needs labels"):
        widgets.dataset_gallery(X)


def test_gallery_displays_as_its_widget():
    X, y = toy_data()
    g = widgets.dataset_gallery(X, y, CLASSES)
    bundle = g._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert g.model.class_index == ALL
