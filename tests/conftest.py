"""Shared test set-up."""
import matplotlib
import pytest

import cnnlab

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


@pytest.fixture(autouse=True)
def library_seed():
    """Every test starts from cnnlab.manual_seed(0): what rng=None draws does not depend on test order."""
    cnnlab.manual_seed(0)


@pytest.fixture(autouse=True)
def close_figures():
    """Widgets create pyplot figures (ipympl needs pyplot's managers); close them after every test."""
    yield
    plt.close("all")
