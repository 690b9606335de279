import numpy as np
import pytest

from cnnlab.search import LogUniform, Uniform, grid, random_configs, search


def test_grid_is_the_cartesian_product_in_order():
    assert grid(lr=[1, 2], wd=[0, 5]) == [{"lr": 1, "wd": 0}, {"lr": 1, "wd": 5},
                                          {"lr": 2, "wd": 0}, {"lr": 2, "wd": 5}]
    with pytest.raises(ValueError, match="'lr' needs a non-empty list"):
        grid(lr=[])


def test_random_configs_are_seeded_and_inside_their_ranges():
    space = {"lr": LogUniform(1e-4, 1e-1), "p": Uniform(0.2, 0.9), "opt": ["sgd", "adam"], "epochs": 3}
    a, b = random_configs(space, 50, rng=1), random_configs(space, 50, rng=1)
    assert a == b and a != random_configs(space, 50, rng=2)
    lrs = np.array([c["lr"] for c in a])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1
    # log-uniform: about as many below 1e-2.5 as above (the geometric middle), not 97% above
    assert 10 < (lrs < 10 ** -2.5).sum() < 40
    assert {c["opt"] for c in a} == {"sgd", "adam"} and all(c["epochs"] == 3 for c in a)
    assert random_configs(space, 50) != random_configs(space, 50)  # rng=None: the library generator
    with pytest.raises(ValueError, match="non-negative"):
        random_configs(space, 2, rng=-1)
    with pytest.raises(ValueError, match="0 < low < high"):
        LogUniform(0, 1)


def test_search_records_metrics_failures_and_divergence_and_picks_the_best():
    def run(config):
        if config["lr"] == 3:
            raise RuntimeError("out of memory")
        if config["lr"] == 4:
            return {"val_loss": float("nan"), "val_accuracy": 0.99}
        return {"val_loss": 1.0 / config["lr"], "val_accuracy": 0.5 + 0.1 * config["lr"]}

    results = search(grid(lr=[1, 2, 3, 4]), run)
    assert [r["error"] for r in results.rows] == ["", "", "failed: RuntimeError: out of memory",
                                                   "diverged (val_loss not finite)"]
    assert results.best("val_accuracy") == {"lr": 2}  # lr=4 diverged: excluded even if it reported more
    assert results.best("val_loss") == {"lr": 2}
    np.testing.assert_array_equal(results.values("lr"), [1, 2, 3, 4])
    table = results.table("val_loss").splitlines()
    assert table[0].split()[:3] == ["lr", "val_accuracy", "val_loss"] and table[2].startswith("2 ")
    with pytest.raises(ValueError, match="at least one config"):
        search([], run)
