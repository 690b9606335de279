"""Shared test set-up."""
import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


@pytest.fixture(autouse=True)
def close_figures():
    """Widgets create pyplot figures (ipympl needs pyplot's managers); close them after every test."""
    yield
    plt.close("all")
