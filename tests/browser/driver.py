"""Driving notebooks in a real browser: open and run a notebook in JupyterLab, find what went wrong
in its outputs, check that every widget rendered, move a slider with the mouse or the keyboard and
wait for a figure to change.

JupyterLab runs with `--LabApp.expose_app_in_browser`, so `window.jupyterapp` is its application:
notebooks are opened and run with its own commands (`docmanager:open`, `notebook:run-all-cells`,
what the File and Run menus call) and read back from its notebook model.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from screenshots import changed_fraction, changed_pixels, is_blank

__all__ = ["ROOT", "COURSE", "ARTIFACTS", "CHANGED", "FIGURE", "WIDGET_ERROR", "WIDGET_ERROR_VIEW", "STATUS_ERROR",
           "CellResult", "LabNotebook", "figure_problems", "layout_problems", "move_slider", "new_page", "poke", "save",
           "save_failure_artifacts", "slider_readout", "assert_race_shows_the_whole_run", "wait_for_change",
           "wait_until_drawn", "wait_until_stable"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COURSE = ROOT / "course"
ARTIFACTS = HERE / "artifacts"  # kept screenshots and logs of failed tests (gitignored)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_ERROR = "Error displaying widget"
WIDGET_ERROR_VIEW = ".jupyter-widgets-error-widget"  # what ipywidgets shows instead of a view that failed
STATUS_ERROR = "Something went wrong"  # what widgets._guard shows when a widget callback fails
# a figure inside a widget: the ipympl canvas, or the PNG image widgets show without ipympl
FIGURE = ".jupyter-matplotlib-canvas-div, .widget-image"
CHANGED = 100  # a plot "changed" when at least this many of its pixels did (a redraw of the same state: 0)

_OPEN_JS = """async (name) => {
  const app = window.jupyterapp;
  await app.restored;
  const widget = await app.commands.execute('docmanager:open', {path: name, factory: 'Notebook'});
  await widget.context.ready;
  await widget.sessionContext.ready;
  app.shell.activateById(widget.id);
  await widget.revealed;
  window.cnnlabNotebook = widget;
  return widget.content.model.cells.length;
}"""

_RUN_ALL_JS = """async (seconds) => {
  const app = window.jupyterapp, widget = window.cnnlabNotebook;
  app.shell.activateById(widget.id);
  const run = app.commands.execute('notebook:run-all-cells');
  const timeout = new Promise(resolve => setTimeout(() => resolve('timeout'), seconds * 1000));
  return String(await Promise.race([run, timeout]));
}"""

_CELLS_JS = """() => {
  const widget = window.cnnlabNotebook, cells = widget.content.model.cells, result = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    widget.content.widgets[i].node.setAttribute('data-cnnlab-cell', String(i));
    const item = {index: i, type: cell.type, source: cell.sharedModel.getSource(),
                  tags: cell.getMetadata('tags') || [], count: null, outputs: []};
    if (cell.type === 'code') {
      item.count = cell.executionCount;
      item.outputs = cell.outputs.toJSON().map(o => ({
        type: o.output_type, name: o.name || '', ename: o.ename || '', evalue: o.evalue || '',
        text: Array.isArray(o.text) ? o.text.join('') : (o.text || ''),
        mimes: Object.keys(o.data || {})}));
    }
    result.push(item);
  }
  return result;
}"""

_SHUTDOWN_JS = """async () => {
  const widget = window.cnnlabNotebook;
  if (widget && widget.sessionContext.session) { await widget.sessionContext.shutdown(); }
}"""


@dataclass
class CellResult:
    index: int
    type: str
    source: str
    tags: list = field(default_factory=list)
    count: int | None = None
    outputs: list = field(default_factory=list)

    @property
    def widget_views(self) -> int:
        return sum(WIDGET_VIEW in o["mimes"] for o in self.outputs)


class LabNotebook:
    """One notebook of the course open in its own JupyterLab tab (`page`)."""

    def __init__(self, page, lab, name: str):
        self.page, self.lab, self.name = page, lab, name
        self.cells: list[CellResult] = []

    def open(self) -> None:
        # one workspace per notebook: JupyterLab sends a second tab on the same workspace elsewhere
        workspace = re.sub(r"\W+", "-", Path(self.name).stem)
        self.page.goto(self.lab.url(f"lab/workspaces/{workspace}?reset"))
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
        self.page.evaluate(_OPEN_JS, self.name)

    def run_all(self, seconds: float) -> None:
        """Run All Cells, wait until the last cell has run (or `seconds`), then read every cell back."""
        outcome = self.page.evaluate(_RUN_ALL_JS, seconds)
        self.cells = [CellResult(**c) for c in self.page.evaluate(_CELLS_JS)]
        if outcome == "timeout":
            raise AssertionError(f"{self.name}: Run All Cells did not finish within {seconds:.0f} s")

    def cell(self, index: int):
        """The Playwright locator of cell `index`."""
        return self.page.locator(f'[data-cnnlab-cell="{index}"]')

    def output_problems(self) -> list[str]:
        """Error outputs (outside cells tagged raises-exception), tracebacks printed to stderr, and code
        cells that never ran."""
        problems = []
        for c in self.cells:
            if c.type != "code":
                continue
            first_line = c.source.strip().splitlines()[0][:80] if c.source.strip() else ""
            if c.source.strip() and c.count is None:
                problems.append(f"cell {c.index} did not run: {first_line!r}")
            for o in c.outputs:
                if o["type"] == "error" and "raises-exception" not in c.tags:
                    problems.append(f"cell {c.index} raised {o['ename']}: {o['evalue']} (in {first_line!r})")
                if o["type"] == "stream" and o["name"] == "stderr" and "Traceback (most recent call last)" in o["text"]:
                    problems.append(f"cell {c.index} printed a traceback: {o['text'][-500:]}")
        return problems

    def widget_problems(self, seconds: float = 30) -> list[str]:
        """Every widget output of the model is rendered as a widget view in the page, without
        'Error displaying widget', without a widget error on its status line, and its figures are drawn."""
        problems = []
        for c in self.cells:
            if not c.widget_views:
                continue
            cell = self.cell(c.index)
            views = cell.locator(".jp-OutputArea-output").filter(has=self.page.locator(".jupyter-widgets")) \
                .filter(has_not=self.page.locator(WIDGET_ERROR_VIEW))
            if not wait_for_count(cell, views, c.widget_views, seconds):  # views render asynchronously
                problems.append(f"cell {c.index}: {c.widget_views} widget outputs but {views.count()} rendered "
                                f"widgets after {seconds:.0f} s")
            failed = cell.locator(WIDGET_ERROR_VIEW)
            for k in range(failed.count()):
                why = (failed.nth(k).get_attribute("title") or failed.nth(k).inner_text()).strip()
                problems.append(f"cell {c.index}: {WIDGET_ERROR} ({why[:300] or 'no message'})")
            text = cell.locator(".jp-OutputArea").inner_text()
            for marker in (WIDGET_ERROR, STATUS_ERROR):
                if marker in text:
                    line = next(line for line in text.splitlines() if marker in line)
                    problems.append(f"cell {c.index}: {line.strip()[:300]}")
            problems += [f"cell {c.index}: {p}" for p in figure_problems(cell, seconds)]
        return problems

    def close(self) -> None:
        try:
            self.page.evaluate(_SHUTDOWN_JS)
        finally:
            self.page.close()


def wait_for_count(cell, locator, expected: int, seconds: float = 30) -> bool:
    """Wait (scrolling `cell` into view) until `locator` matches at least `expected` elements."""
    deadline = time.monotonic() + seconds
    while locator.count() < expected:
        if time.monotonic() > deadline:
            return False
        try:
            cell.scroll_into_view_if_needed(timeout=2_000)
        except Exception:  # noqa: BLE001 - keep waiting; the count decides
            pass
        time.sleep(0.5)
    return True


def figure_problems(scope, seconds: float = 30) -> list[str]:
    """Figures (ipympl canvases or PNG images) inside `scope` that are never shown or shown but never
    drawn. An ipympl canvas measures zero until its first frame arrives, so a widget whose figures all
    stay hidden for `seconds` is a problem; a figure hidden while others show is a collapsed part."""
    figures = scope.locator(FIGURE)
    count = figures.count()
    if not count:
        return []
    deadline = time.monotonic() + seconds
    while not (shown := [k for k in range(count) if is_shown(figures.nth(k))]) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not shown:
        return [f"none of its {count} figures is shown (hidden or of zero size) after {seconds:.0f} s"]
    return [f"figure {k} stayed blank for {seconds:.0f} s" for k in shown if not wait_until_drawn(figures.nth(k), seconds)]


# Problems of the widget in the element `selector` names: an element reaching past the right edge of the
# output column it is in (or of the window), a label, readout or button whose text is cut (CSS ellipsis: its
# text is wider than its box), or a box whose content is wider than the box (squeezed by its row: its
# controls are cut off).
_LAYOUT_JS = """(selector) => {
  const root = document.querySelector(selector);
  const column = root.closest('.jp-OutputArea-output') || root;
  const limit = Math.min(column.getBoundingClientRect().right, document.documentElement.clientWidth) + 1;
  const problems = [];
  const name = el => (el.innerText || el.className || el.tagName).trim().replace(/\\s+/g, ' ').slice(0, 40);
  for (const el of root.querySelectorAll('.jupyter-widgets, canvas, img, table')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > limit) {
      problems.push(`${el.tagName.toLowerCase()} "${name(el)}" is ${Math.round(box.width)} px wide and reaches ${Math.round(box.right - limit)} px past the output column (${Math.round(limit - column.getBoundingClientRect().left)} px)`);
    }
  }
  for (const el of root.querySelectorAll('.widget-label, .widget-readout, .widget-button, .widget-toggle-button, .widget-dropdown select')) {
    if (el.offsetWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`text cut: "${name(el)}" needs ${el.scrollWidth} px, has ${el.clientWidth} px`);
    }
  }
  for (const box of root.querySelectorAll('.widget-box')) {
    if (box.offsetWidth > 0 && box.scrollWidth > box.clientWidth + 1) {
      problems.push(`content cut: a box of "${name(box)}" needs ${box.scrollWidth} px, has ${box.clientWidth} px`);
    }
  }
  return problems;
}"""


def layout_problems(page, selector: str) -> list[str]:
    """What does not fit in the widget that `selector` names (see _LAYOUT_JS), as sentences."""
    return page.evaluate(_LAYOUT_JS, selector)


def is_shown(element) -> bool:
    """Whether an element is visible with a non-zero area once scrolled into view (JupyterLab does not
    lay out cells far outside the viewport, so an element there measures zero)."""
    try:
        element.scroll_into_view_if_needed(timeout=2_000)
    except Exception:  # noqa: BLE001 - a hidden element cannot be scrolled to; it is not shown
        return False
    box = element.bounding_box() if element.is_visible() else None
    return bool(box) and box["width"] * box["height"] > 0


def wait_until_shown(element, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not is_shown(element):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def wait_until_drawn(figure, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if not is_blank(figure.screenshot()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def wait_until_stable(figure, seconds: float = 20, pause: float = 0.4) -> bytes:
    """A screenshot of `figure` once two consecutive ones agree (the figure finished redrawing)."""
    deadline = time.monotonic() + seconds
    shot = figure.screenshot()
    while True:
        time.sleep(pause)
        again = figure.screenshot()
        if changed_fraction(shot, again) == 0.0 or time.monotonic() > deadline:
            return again
        shot = again


def _slider(scope, label: str | None):
    sliders = scope.locator(".widget-slider")
    if label is not None:
        exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
        sliders = sliders.filter(has=scope.page.locator(".widget-label", has_text=exact))
    if sliders.count() == 0:
        raise AssertionError(f"no slider {'labelled ' + repr(label) if label else ''} in this widget")
    return sliders.first


def slider_readout(scope, label: str | None = None) -> str:
    return _slider(scope, label).locator(".widget-readout").inner_text().strip()


def move_slider(scope, label: str | None = None, how: str = "mouse", presses: int = 10) -> None:
    """Move a slider of the widget in `scope` (the one labelled `label`, else the first) as a person
    would: drag its handle 30% of the track towards the side with more room ("mouse"), or focus the
    handle and press an arrow key `presses` times towards that side ("keyboard")."""
    page = scope.page
    slider = _slider(scope, label)
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle").first
    track = slider.locator(".noUi-target").first
    hb, tb = handle.bounding_box(), track.bounding_box()
    x, y = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    room_right = (x - tb["x"]) / tb["width"] < 0.5
    if how == "mouse":
        target = x + (0.3 if room_right else -0.3) * tb["width"]
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(target, y, steps=10)
        page.mouse.up()
    elif how == "keyboard":
        handle.focus()
        for _ in range(presses):
            page.keyboard.press("ArrowRight" if room_right else "ArrowLeft")
    else:
        raise ValueError(f"how must be 'mouse' or 'keyboard', got {how!r}")


def wait_for_change(figure, before: bytes, seconds: float = 30, at_least: int = 100) -> tuple[int, bytes]:
    """Wait until a screenshot of `figure` differs from `before` in at least `at_least` pixels and has
    stopped changing; returns (changed pixels, last screenshot). The count is below `at_least` if that
    never happened within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        after = figure.screenshot()
        pixels = changed_pixels(before, after)
        if pixels >= at_least:
            after = wait_until_stable(figure)
            return changed_pixels(before, after), after
        if time.monotonic() > deadline:
            return pixels, after
        time.sleep(0.25)


def poke(notebook: "LabNotebook", cell_index: int, label, artifacts, how: str = "mouse") -> str:
    """Move a slider of the widget shown by cell `cell_index`; assert that its plot changed."""
    widget = notebook.cell(cell_index).locator(".jp-OutputArea-output .jupyter-widgets").first
    figure = widget.locator(FIGURE).first
    if figure.count() == 0:  # a widget without a figure (a table): compare the whole widget
        figure = widget
    assert wait_until_shown(figure), (f"{notebook.name} cell {cell_index}: the widget's plot is not shown "
                                      "(hidden or of zero size)")
    before = wait_until_stable(figure)
    old = slider_readout(widget, label)
    move_slider(widget, label, how)
    new = old
    for _ in range(40):
        new = slider_readout(widget, label)
        if new != old:
            break
        notebook.page.wait_for_timeout(250)
    assert new != old, f"{notebook.name} cell {cell_index}: the slider {label or '(first)'} did not move ({old})"
    pixels, after = wait_for_change(figure, before, at_least=CHANGED)
    save(artifacts, f"cell{cell_index}-before.png", before)
    save(artifacts, f"cell{cell_index}-after.png", after)
    moved = f"moving the slider {label or '(first)'} from {old} to {new}"
    assert pixels >= CHANGED, (f"{notebook.name} cell {cell_index}: the plot did not change after {moved} "
                               f"({pixels} of its pixels did); before/after screenshots in {artifacts}")
    text = widget.inner_text()
    assert STATUS_ERROR not in text, f"{notebook.name} cell {cell_index}: the widget reported an error after {moved}"
    return moved


def assert_race_shows_the_whole_run(scope, where: str) -> None:
    """When the race appears, its "show step" slider stands at the last step (all trajectories drawn)."""
    shown, steps = slider_readout(scope, "show step"), slider_readout(scope, "steps")
    assert shown == steps, (f"{where}: the optimizer race appears at step {shown} of {steps}: its trajectories are "
                            "not drawn until a control is moved (the Play widget's jslink sets 'show step' to the "
                            "Play value in the browser)")


def save(folder: Path, name: str, png: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(png)
    return path


def _record_errors(page) -> None:
    """Console errors and uncaught exceptions of the page, as text, in `page.errors` (and every console
    line in `page.console` for the artefacts)."""
    page.errors, page.console = [], []

    def on_console(message):
        page.console.append(f"[{message.type}] {message.text}")
        if message.type == "error":
            page.errors.append(f"console error: {message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: page.errors.append(f"uncaught exception: {error}"))


def new_page(browser):
    page = browser.new_page()
    _record_errors(page)
    return page


def save_failure_artifacts(page, folder: Path, servers=()) -> None:
    try:
        page.screenshot(path=str(folder / "page.png"), full_page=True)
    except Exception as error:  # noqa: BLE001 - the page may be gone; keep the other artefacts
        (folder / "page-screenshot-failed.txt").write_text(str(error))
    (folder / "console.txt").write_text("\n".join(getattr(page, "console", [])))
    for server in servers:
        (folder / f"{server.name.lower()}.log").write_text(server.log_tail(400))
