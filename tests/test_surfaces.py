"""Surfaces: exact gradients (checked by centred differences), known minima, trajectories."""
import numpy as np
import pytest

from cnnlab.optim import SGD, Adam
from cnnlab.surfaces import SURFACES, Beale, BoundedSaddle, QuadraticBowl, Rosenbrock, Saddle, trajectory


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_gradients_match_centered_differences(name):
    surface = SURFACES[name]()
    rng = np.random.default_rng(0)
    (x0, x1), (y0, y1) = surface.bounds
    points = np.column_stack([rng.uniform(x0, x1, 20), rng.uniform(y0, y1, 20)])
    h = 1e-6
    numeric = np.stack([(surface(points + h * e) - surface(points - h * e)) / (2 * h)
                        for e in np.eye(2)], axis=-1)
    np.testing.assert_allclose(surface.grad(points), numeric, rtol=1e-6, atol=1e-5)


def test_known_values_and_minima():
    assert Saddle()((3.0, 2.0)) == 9 - 4
    assert Beale()((3.0, 0.5)) == 0 and np.allclose(Beale().grad((3.0, 0.5)), 0)
    assert Rosenbrock()((1.0, 1.0)) == 0 and np.allclose(Rosenbrock().grad((1.0, 1.0)), 0)
    assert QuadraticBowl(10)((1.0, 1.0)) == pytest.approx(5.5)
    grid = np.zeros((4, 5, 2))
    assert Saddle()(grid).shape == (4, 5)


def test_bad_points_are_refused():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\), got \(3,\)"):
        Saddle().grad(np.zeros(3))
    with pytest.raises(ValueError, match="condition must be >= 1"):
        QuadraticBowl(0.5)


def test_gradient_descent_on_the_bowl_contracts_by_one_minus_lr_per_step():
    run = trajectory(QuadraticBowl(4.0), lambda ps: SGD(ps, lr=0.1), start=(1.0, 1.0), steps=3)
    np.testing.assert_allclose(run.points[:, 0], [1, 0.9, 0.81, 0.729])   # x <- (1 - 0.1) x
    np.testing.assert_allclose(run.points[:, 1], [1, 0.6, 0.36, 0.216])   # y <- (1 - 0.1*4) y
    assert not run.diverged and run.values[-1] < run.values[0]


def test_too_large_a_learning_rate_is_reported_as_divergence_not_an_exception():
    run = trajectory(QuadraticBowl(4.0), lambda ps: SGD(ps, lr=1.0), start=(1.0, 1.0), steps=500)
    assert run.diverged and run.diverged_at < 500
    assert np.all(np.isfinite(run.points))


def test_running_downhill_for_ever_is_an_escape_not_a_divergence():
    run = trajectory(Saddle(), lambda ps: SGD(ps, lr=0.1, momentum=0.9), start=(-1.0, 1e-3), steps=1000)
    assert run.escaped_at is not None and not run.diverged
    assert np.all(np.isfinite(run.values)) and run.values[-1] < -1e6 * 0.9


def test_adam_escapes_the_saddle_and_noise_is_seeded():
    run = trajectory(Saddle(), lambda ps: Adam(ps, lr=0.05), steps=200)
    assert run.values[-1] < -1  # left the saddle point downhill along y
    a = trajectory(Saddle(), lambda ps: SGD(ps, lr=0.01), steps=20, noise=0.1, rng=3)
    b = trajectory(Saddle(), lambda ps: SGD(ps, lr=0.01), steps=20, noise=0.1, rng=3)
    np.testing.assert_array_equal(a.points, b.points)
    c = trajectory(Saddle(), lambda ps: SGD(ps, lr=0.01), steps=20, noise=0.1)  # the library generator
    assert not np.array_equal(a.points, c.points)
    with pytest.raises(TypeError, match="trajectory: rng must be"):
        trajectory(Saddle(), lambda ps: SGD(ps, lr=0.01), noise=0.1, rng=0.5)


def test_the_bounded_saddle_has_its_saddle_at_the_origin_and_two_minima_at_minus_one():
    s = BoundedSaddle()
    assert s((0.0, 0.0)) == 0 and np.array_equal(s.grad((0.0, 0.0)), [0.0, 0.0])
    for x, y in s.minima:  # y^2 = 2: -2 + 4/4 = -1; gradient -2y + y^3 = y (y^2 - 2) = 0
        assert s((x, y)) == pytest.approx(-1.0) and np.allclose(s.grad((x, y)), 0, atol=1e-12)
    # the Hessian diag(2, -2 + 3 y^2) is diag(2, -2) at the saddle and diag(2, 4) at the minima
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 81), np.linspace(-2.2, 2.2, 89)), axis=-1)
    assert s(grid).min() >= -1.0 - 1e-12


def test_escaping_the_bounded_saddle_means_arriving_at_a_minimum():
    run = trajectory(BoundedSaddle(), lambda ps: SGD(ps, lr=0.05, momentum=0.9), start=(-1.0, 1e-3), steps=600)
    assert not run.diverged
    np.testing.assert_allclose(run.points[-1], (0.0, np.sqrt(2.0)), atol=1e-3)
