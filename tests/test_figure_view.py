"""`widgets._figure`: the figures of the widgets, with the interactive backend (ipympl) and without.

ipympl 0.10 answers a frame request that comes before the browser's "initialized" message with raw
RGBA pixels where the browser expects a PNG (a broken image and a console error, seen in the browser
tests). These tests drive a real ipympl canvas with the messages its browser view would send.
"""
import json
import warnings

import matplotlib
import matplotlib.pyplot as plt
import pytest

from widgets._figure import FigureView, new_figure

_backend = matplotlib.get_backend()
import ipympl.backend_nbagg  # noqa: E402, F401  (importing it makes it pyplot's backend)

plt.switch_backend(_backend)  # the other tests keep Agg
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def interactive_figure():
    """A widget figure made with the ipympl backend, with its outgoing comm messages recorded as
    (type, first 8 bytes of the binary buffer or None)."""
    plt.switch_backend("module://ipympl.backend_nbagg")
    try:
        with warnings.catch_warnings():  # ipympl's toolbar passes traitlets an argument it deprecates
            warnings.simplefilter("ignore", DeprecationWarning)
            fig, _ = new_figure(figsize=(2, 1.5), dpi=50)
    finally:
        plt.switch_backend(_backend)
    messages = []

    def record(content, buffers=None):
        messages.append((json.loads(content["data"])["type"], bytes(buffers[0][:8]) if buffers else None))

    fig.canvas.send = record
    yield fig, messages
    plt.close(fig)


def browser_says(canvas, kind: str) -> None:
    canvas._handle_message(canvas, {"type": kind}, [])


def frames(messages) -> list:
    return [first for kind, first in messages if kind == "binary"]


def test_a_frame_asked_for_before_initialized_is_a_png(interactive_figure):
    fig, messages = interactive_figure
    FigureView(fig).refresh()
    browser_says(fig.canvas, "draw")  # the browser view asks for a frame before "initialized"
    assert frames(messages) and all(first == PNG_SIGNATURE for first in frames(messages))


def test_frames_after_initialized_are_pngs(interactive_figure):
    fig, messages = interactive_figure
    view = FigureView(fig)
    browser_says(fig.canvas, "initialized")
    messages.clear()
    view.refresh()
    assert messages == [("draw", None)]  # a refresh asks the browser to request a frame
    browser_says(fig.canvas, "draw")
    assert frames(messages) == [PNG_SIGNATURE]


def test_a_non_interactive_figure_is_rendered_to_png_in_an_image_widget():
    fig, _ = new_figure(figsize=(2, 1.5), dpi=50)  # Agg in tests
    try:
        view = FigureView(fig)
        assert not view.interactive
        assert view.widget.value[:8] == PNG_SIGNATURE
    finally:
        plt.close(fig)
