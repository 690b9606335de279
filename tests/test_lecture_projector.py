"""The projector rule of lecture mode (widgets/lecture.py's docstring), checked without a browser: every
preset of every demo is built as `make present` shows it, each of its figures is drawn, and what was drawn is
measured: every text and line in screen pixels (points x dpi / 72), the figure's size, and every text inside
the figure (its window extent). The browser side (the canvas shown at its natural size in Voilà at
1920x1080) is tests/browser/test_voila.py."""
from dataclasses import dataclass, field

import numpy as np
import pytest
from matplotlib.collections import Collection, LineCollection
from matplotlib.contour import ContourSet
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from widgets import lecture
from widgets._new_figure import MAX_WIDTH_PX, design_dpi, new_figure

# The rule, as the docstring of widgets/lecture.py states it, in screen pixels at 1920x1080.
MIN_TEXT_PX = 18.0  # font size of the smallest text
MIN_LINE_PX = 2.0  # width of the thinnest line
COLUMN_PX = 1890  # Voilà's output column at 1920, measured; a figure needs 8 px of frame and room for a scrollbar
MAX_HEIGHT_PX = 1000  # a 1080-line screen less the browser's margins

SPECS = lecture.load_presets()
CASES = [(name, preset) for name, spec in SPECS.items() for preset in spec.presets]


@dataclass
class Drawn:
    """What one draw of a figure put on the screen: (artist, size in px) for texts and lines."""
    texts: list = field(default_factory=list)  # (Text, font size px, window extent)
    lines: list = field(default_factory=list)  # (artist, width px)


def _is_lines(collection) -> bool:
    return isinstance(collection, LineCollection) or (isinstance(collection, ContourSet) and not collection.filled)


@pytest.fixture
def record(monkeypatch):
    """`record(fig)` draws `fig` and returns what it drew (texts and lines that are visible and not empty)."""
    drawn = Drawn()
    text_draw, line_draw, collection_draw = Text.draw, Line2D.draw, Collection.draw

    def draw_text(self, renderer):
        text_draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            fig = self.get_figure(root=True)
            drawn.texts.append((self, self.get_fontsize() * fig.dpi / 72, self.get_window_extent(renderer)))

    def draw_line(self, renderer):
        line_draw(self, renderer)
        if self.get_visible() and self.get_linestyle() not in ("None", "", " ") and len(self.get_xdata()) > 1:
            drawn.lines.append((self, self.get_linewidth() * self.get_figure(root=True).dpi / 72))

    def draw_collection(self, renderer):
        collection_draw(self, renderer)
        widths = [w for w in np.atleast_1d(self.get_linewidths()) if w > 0]
        if self.get_visible() and _is_lines(self) and widths:
            drawn.lines.append((self, min(widths) * self.get_figure(root=True).dpi / 72))

    monkeypatch.setattr(Text, "draw", draw_text)
    monkeypatch.setattr(Line2D, "draw", draw_line)
    monkeypatch.setattr(Collection, "draw", draw_collection)

    def run(fig) -> Drawn:
        drawn.texts.clear(), drawn.lines.clear()
        fig.canvas.draw()
        return Drawn(list(drawn.texts), list(drawn.lines))

    return run


def _problems(fig, drawn: Drawn, max_width: float) -> list[str]:
    """Where a drawn figure breaks the projector rule, as sentences."""
    width, height = fig.bbox.width, fig.bbox.height
    problems = []
    if width > max_width + 0.5 or width > COLUMN_PX - 25:
        problems.append(f"{width:.0f} px wide, the most is {min(max_width, COLUMN_PX - 25):.0f}")
    if height > MAX_HEIGHT_PX + 0.5:
        problems.append(f"{height:.0f} px tall, the most is {MAX_HEIGHT_PX}")
    shown = []
    for text, px, box in drawn.texts:
        if text.get_clip_on() and text.get_clip_box() is not None:  # what its axes clips away is not shown
            box = Bbox.intersection(box, text.get_clip_box())
            if box is None or box.width * box.height == 0:
                continue
        for other, other_box in shown:
            overlap = Bbox.intersection(box, other_box)
            if overlap is not None and min(overlap.width, overlap.height) > 2:
                problems.append(f"texts {other.get_text()[:30]!r} and {text.get_text()[:30]!r} overlap")
        shown.append((text, box))
        if px < MIN_TEXT_PX - 1e-6:
            problems.append(f"text {text.get_text()[:30]!r} is {px:.1f} px tall")
        if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
            problems.append(f"text {text.get_text()[:30]!r} is cut: it spans {np.round(box.extents)} in a "
                            f"{width:.0f}x{height:.0f} figure")
    problems += [f"a line ({type(line).__name__} {line.get_label()!r}) is {px:.2f} px wide"
                 for line, px in drawn.lines if px < MIN_LINE_PX - 1e-6]
    return problems


@pytest.mark.parametrize("name, preset", CASES, ids=[f"{n}:{p}" for n, p in CASES])
def test_every_preset_meets_the_projector_rule(name, preset, record):
    spec = SPECS[name]
    obj = lecture.build(name, preset)
    try:
        figures = lecture._figures(obj)
        problems = []
        for k, fig in enumerate(figures):
            drawn = record(fig)
            assert drawn.texts, f"{name} figure {k}: no text was drawn (the recorder is broken?)"
            problems += [f"figure {k}: {p}" for p in _problems(fig, drawn, spec.max_width)]
        update = getattr(obj, "update", None)
        if callable(update) and not problems:  # what an update draws (new ticks, texts) keeps the rule too
            update()
            for k, fig in enumerate(figures):
                problems += [f"figure {k} after update(): {p}" for p in _problems(fig, record(fig), spec.max_width)]
        assert not problems, f"{name} preset {preset!r} at 1920x1080:\n" + "\n".join(problems)
    finally:
        lecture._dispose(obj)


def test_the_rule_checker_fails_a_laptop_figure(record):
    """The same checks on a figure as the laptop shows it (7 pt text and 0.5 pt lines at 72 dpi, a label past
    the edge) find every fault: 7 x 72 / 72 = 7 px text, 0.5 px lines."""
    fig, ax = new_figure(figsize=(4, 3), dpi=72)
    ax.plot([0, 1], [0, 1], lw=0.5)
    ax.set_title("a title", fontsize=7)
    ax.text(3.5, 0.5, "beyond the right edge", fontsize=20)
    problems = "\n".join(_problems(fig, record(fig), max_width=200))
    assert "288 px wide, the most is 200" in problems
    assert "text 'a title' is 7.0 px tall" in problems
    assert "text 'beyond the right edge' is cut" in problems
    assert "Line2D" in problems and "is 0.50 px wide" in problems


def test_enlarge_starts_from_the_designed_size_and_stops_at_the_column():
    """A 12-inch figure designed at 100 dpi is capped at 900 / 12 = 75 dpi on the laptop; enlarged 1.3 times it
    is 12 x 130 = 1560 px wide (its designed size times the scale), not 900 x 1.3 = 1170; enlarged 3 times it
    would be 3600 px, so the column's width (1000 px here) caps it at 1000 / 12 dpi."""

    class Holder:
        def __init__(self):
            self.fig, ax = new_figure(figsize=(12, 4), dpi=100)
            ax.plot([0, 1], [0, 1], lw=1.0)

    laptop = Holder()
    assert laptop.fig.dpi == pytest.approx(75) and laptop.fig.bbox.width == pytest.approx(MAX_WIDTH_PX)
    assert design_dpi(laptop.fig) == 100
    lecture.enlarge(laptop, 1.3)
    assert laptop.fig.bbox.width == pytest.approx(1560)
    capped = Holder()
    lecture.enlarge(capped, 3.0, max_width=1000)
    assert capped.fig.dpi == pytest.approx(1000 / 12) and capped.fig.bbox.width == pytest.approx(1000)
    # the smallest text (the default 10 pt tick labels: 10 x 83.3 / 72 = 11.6 px) and the 1 pt line were raised
    for text in capped.fig.findobj(Text):
        assert text.get_fontsize() * capped.fig.dpi / 72 >= MIN_TEXT_PX - 1e-6
    assert capped.fig.axes[0].lines[0].get_linewidth() == pytest.approx(MIN_LINE_PX * 72 / (1000 / 12))


def test_a_bad_max_width_is_refused(tmp_path):
    path = tmp_path / "presets.json"
    path.write_text('{"demos": {"d": {"title": "t", "lesson": "07_optimizers", "factory": "m:f", '
                    '"presets": {"a": {}}, "max_width": 5000}}}')
    with pytest.raises(ValueError, match=r"max_width must be a number of pixels in \[300, 1865\], got 5000"):
        lecture.load_presets(path)
    with pytest.raises(ValueError, match="max_width must be a number of pixels"):
        lecture.enlarge(object(), 1.0, max_width=0)
