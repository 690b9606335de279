"""surface_paths: the static figure of optimizer runs on a surface."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cnnlab.optim import SGD
from cnnlab.surfaces import QuadraticBowl, Saddle, trajectory
from widgets._optimizers import color
from widgets.surface_paths import surface_paths


def path_lines(ax):
    return [line for line in ax.get_lines() if line.get_label() and not line.get_label().startswith("_")]


def test_each_run_is_drawn_as_its_path_and_its_values():
    bowl = QuadraticBowl(20.0)
    slow = trajectory(bowl, lambda ps: SGD(ps, lr=0.01), steps=20)
    points = np.array([[-1.0, 0.5], [0.0, 0.0]])
    fig = surface_paths(bowl, {"SGD": slow, "by hand": points}, yscale="log", title="t")
    ax_map, ax_f = fig.axes[:2]
    (sgd_map, hand_map), (sgd_f, hand_f) = path_lines(ax_map), path_lines(ax_f)
    np.testing.assert_array_equal(sgd_map.get_xydata(), slow.points)
    np.testing.assert_array_equal(hand_map.get_xydata(), points)
    np.testing.assert_allclose(sgd_f.get_ydata(), 0.5 * (slow.points[:, 0] ** 2 + 20 * slow.points[:, 1] ** 2))
    np.testing.assert_allclose(hand_f.get_ydata(), [0.5 * (1 + 20 * 0.25), 0.0])
    assert sgd_map.get_color() == color("SGD") and hand_map.get_color() != sgd_map.get_color()
    assert ax_f.get_yscale() == "log" and fig.texts[0].get_text() == "t"
    plt.close(fig)


def test_two_labels_of_one_optimizer_get_different_colors():
    bowl = QuadraticBowl()
    runs = {f"SGD lr={lr}": trajectory(bowl, lambda ps: SGD(ps, lr=lr), steps=5) for lr in (0.01, 0.05)}
    fig = surface_paths(bowl, runs)
    first, second = path_lines(fig.axes[0])
    assert first.get_color() == color("SGD") and second.get_color() != first.get_color()
    plt.close(fig)


def test_a_diverged_run_ends_with_a_cross():
    bowl = QuadraticBowl(20.0)
    blown = trajectory(bowl, lambda ps: SGD(ps, lr=0.2), steps=200)
    assert blown.diverged
    fig = surface_paths(bowl, {"SGD": blown}, yscale="symlog")
    markers = [line.get_marker() for line in fig.axes[0].get_lines()]
    assert "x" in markers
    plt.close(fig)


@pytest.mark.parametrize("args, kwargs, error, message", [
    (("bowl", {"a": np.zeros((2, 2))}), {}, TypeError, "surface must be a cnnlab.surfaces.Surface, got str"),
    ((Saddle(), {}), {}, ValueError, "runs is empty"),
    ((Saddle(), {"a": np.zeros((2, 2))}), {"yscale": "loglog"}, ValueError, "yscale must be"),
    ((Saddle(), {"a": np.zeros((3, 3))}), {}, ValueError, r"run 'a' must be a Trajectory or points of shape \(k, 2\)"),
])
def test_bad_input_is_refused(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        surface_paths(*args, **kwargs)
    plt.close("all")
