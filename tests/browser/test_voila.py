"""Lecture mode in the browser: Voilà serves course/lecture_demos.ipynb as a dashboard (what
`make present` does); every demo of widgets/lecture_presets.json renders with its figures drawn, a
slider moved with the keyboard changes the optimizer race's plot, and another preset picked in the
menu rebuilds it.

The same run takes the course map's screenshots (one per demo, course/README.md): they go to the
test's artefacts folder, and into course/screenshots/ when CNNLAB_SCREENSHOTS=1
(`CNNLAB_SCREENSHOTS=1 make test-browser`).
"""
from __future__ import annotations

import json
import os
import time

import pytest
from driver import (CHANGED, COURSE, FIGURE, ROOT, STATUS_ERROR, WIDGET_ERROR, WIDGET_ERROR_VIEW,
                    assert_race_shows_the_whole_run, figure_problems, layout_problems, move_slider, save,
                    slider_readout, wait_for_change, wait_until_stable)
from screenshots import MAX_BYTES, save_png

DEMOS = list(json.loads((ROOT / "widgets" / "lecture_presets.json").read_text())["demos"])
RENDER_SECONDS = 300
SCREENSHOTS = COURSE / "screenshots"
PROJECTOR = {"width": 1920, "height": 1080}

# Figures (ipympl canvases, or PNG images without ipympl) in the element `selector` names that the page
# shows at another size than their own: lecture mode sizes each figure for the projector (its text in screen
# pixels, widgets/lecture.py), so CSS must neither shrink it (a max-width, a squeezed flex row) nor stretch it.
# A canvas holds devicePixelRatio pixels per CSS pixel (ipympl draws on two of the same size: figure and rubber band).
_SCALED_JS = """(selector) => {
  const problems = [], ratio = window.devicePixelRatio;
  const root = document.querySelector(selector);
  const canvases = [...root.querySelectorAll('.jupyter-matplotlib-canvas-div canvas')]
    .map(el => [el, el.width / ratio, el.height / ratio]);
  const images = [...root.querySelectorAll('img.widget-image, .widget-image img')]
    .map(el => [el, el.naturalWidth, el.naturalHeight]);
  for (const [el, width, height] of [...canvases, ...images]) {
    const box = el.getBoundingClientRect();
    if (width > 0 && (Math.abs(box.width - width) > 1.5 || Math.abs(box.height - height) > 1.5)) {
      problems.push(`a ${width.toFixed(0)}x${height.toFixed(0)} figure is shown at ${box.width.toFixed(0)}x${box.height.toFixed(0)} px`);
    }
  }
  if (!canvases.length && !images.length && root.querySelector('.jupyter-matplotlib, .widget-image')) {
    problems.push('its figures were not found to measure');
  }
  return problems;
}"""
# squeeze the first canvas of `selector` to 500 px wide, measure with _SCALED_JS, restore it
_SQUEEZE_JS = f"""(selector) => {{
  const canvas = document.querySelector(selector + ' .jupyter-matplotlib-canvas-div canvas');
  const width = canvas.style.width;
  canvas.style.width = '500px';
  try {{ return ({_SCALED_JS})(selector); }} finally {{ canvas.style.width = width; }}
}}"""


@pytest.fixture(scope="module")
def dashboard(voila, browser):
    """The lecture dashboard, loaded once for this module's tests."""
    from driver import new_page

    page = new_page(browser)
    page.set_viewport_size(PROJECTOR)  # the projector's window: lecture mode sizes its figures for it
    page.goto(voila.url(""), timeout=RENDER_SECONDS * 1000)
    deadline = time.monotonic() + RENDER_SECONDS
    while page.locator(".cnnlab-demo").count() < len(DEMOS) and time.monotonic() < deadline:
        if "Traceback" in page.locator("body").inner_text():
            break
        page.wait_for_timeout(500)
    yield page
    page.close()


def _fail_with_artifacts(page, artifacts, voila, message):
    page.screenshot(path=str(artifacts / "page.png"), full_page=True)
    (artifacts / "console.txt").write_text("\n".join(page.console))
    (artifacts / "voila.log").write_text(voila.log_tail(400))
    pytest.fail(f"{message}\nartefacts in {artifacts}")


def test_every_demo_renders_in_voila(dashboard, voila, artifacts):
    page = dashboard
    shown = [name for name in DEMOS if page.locator(f".cnnlab-demo-{name}").count() == 1]
    text = page.locator("body").inner_text()
    problems = [f"demo {name} not shown" for name in DEMOS if name not in shown]
    problems += [f"the page shows {marker!r}" for marker in ("Traceback", WIDGET_ERROR, STATUS_ERROR) if marker in text]
    problems += [f"{n} widgets failed to render" for n in [page.locator(WIDGET_ERROR_VIEW).count()] if n]
    for name in shown:
        problems += [f"demo {name}: {p}" for p in figure_problems(page.locator(f".cnnlab-demo-{name}"))]
    problems += page.errors
    if problems:
        _fail_with_artifacts(page, artifacts, voila, "\n".join(problems))
    assert len(shown) == len(DEMOS) >= 8


def test_screenshot_of_every_demo(dashboard, artifacts):
    """One small PNG per demo (the course map's pictures), each under MAX_BYTES."""
    page = dashboard
    target = SCREENSHOTS if os.environ.get("CNNLAB_SCREENSHOTS") == "1" else artifacts
    sizes = {}
    for name in DEMOS:
        demo = page.locator(f".cnnlab-demo-{name}")
        demo.scroll_into_view_if_needed()
        figure = demo.locator(FIGURE).first
        if figure.count():
            wait_until_stable(figure)
        sizes[name] = save_png(demo.screenshot(), target / f"{name}.png")
    assert set(sizes) == set(DEMOS) and all(0 < size <= MAX_BYTES for size in sizes.values()), sizes


def test_race_slider_and_preset_menu_respond_in_voila(dashboard, voila, artifacts):
    page = dashboard
    race = page.locator(".cnnlab-demo-optimizer_race")
    assert_race_shows_the_whole_run(race, "Voila")
    figure = race.locator(FIGURE).first
    before = wait_until_stable(figure)
    old = slider_readout(race, "momentum μ")
    move_slider(race, "momentum μ", how="keyboard", presses=15)
    new = old
    for _ in range(40):
        new = slider_readout(race, "momentum μ")
        if new != old:
            break
        page.wait_for_timeout(250)
    assert new != old, f"the momentum slider did not move with the keyboard ({old})"
    pixels, after = wait_for_change(figure, before, at_least=CHANGED)
    save(artifacts, "race-before.png", before), save(artifacts, "race-after.png", after)
    if pixels < CHANGED:
        _fail_with_artifacts(page, artifacts, voila, f"the race's plot did not change after the momentum moved "
                                                     f"from {old} to {new} ({pixels} of its pixels)")

    before = wait_until_stable(figure)
    preset = "bowl: SGD zig-zags at a large rate"  # 200 steps, and only SGD, Momentum and Adam run
    race.locator("select").first.select_option(preset)
    for _ in range(120):  # the widget is rebuilt: wait for the new one (its steps slider says 200)
        if slider_readout(race, "steps") == "200":
            break
        page.wait_for_timeout(250)
    assert slider_readout(race, "steps") == "200", f"picking the preset {preset!r} did not rebuild the race"
    figure = race.locator(FIGURE).first  # the new widget's figure
    pixels, after = wait_for_change(figure, before, at_least=CHANGED)
    save(artifacts, "preset-after.png", after)
    if pixels < CHANGED:
        _fail_with_artifacts(page, artifacts, voila, f"picking the preset {preset!r} did not change the plot")
    assert_race_shows_the_whole_run(race, "Voila, after picking a preset")
    text = race.inner_text()
    assert STATUS_ERROR not in text and "Nesterov: f" not in text, text[-500:]  # three runners now
    assert "SGD: f" in text and "Adam: f" in text, text[-500:]
    assert not page.errors, "\n".join(page.errors)


def test_every_demo_fits_a_projector_in_voila(dashboard, voila, artifacts):
    """At 1920x1080 every demo stays inside the window: nothing past its right edge, no cut label or
    squeezed box, every figure shown once scrolled into view and at its own size, not scaled by CSS (the
    projector rule of widgets/lecture.py counts text in the figure's pixels); screenshots into
    course/screenshots/projector/ when CNNLAB_SCREENSHOTS=1."""
    page = dashboard
    target = SCREENSHOTS / "projector" if os.environ.get("CNNLAB_SCREENSHOTS") == "1" else artifacts
    size = page.viewport_size
    page.set_viewport_size(PROJECTOR)
    try:
        problems = []
        for name in DEMOS:
            demo = page.locator(f".cnnlab-demo-{name}")
            demo.scroll_into_view_if_needed()
            found = layout_problems(page, f".cnnlab-demo-{name}") + figure_problems(demo)
            found += page.evaluate(_SCALED_JS, f".cnnlab-demo-{name}")
            problems += [f"demo {name}: {p}" for p in found]
            save_png(demo.screenshot(), target / f"{name}.png")
        if problems:
            _fail_with_artifacts(page, artifacts, voila, "at 1920x1080:\n" + "\n".join(problems))
        # the size check can fail: the race's canvas squeezed to 500 px by CSS is reported
        squeezed = page.evaluate(_SQUEEZE_JS, ".cnnlab-demo-optimizer_race")
        assert any(" figure is shown at 500x" in p for p in squeezed), squeezed
    finally:
        page.set_viewport_size(size)
