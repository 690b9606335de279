"""Lecture mode without a browser: the presets file, the loader, the enlargement and the preset menu,
and the claims that preset names make (the browser side is tests/browser/test_voila.py)."""
import inspect
import io
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from widgets import lecture
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets.optimizer_race import RaceModel

ROOT = Path(__file__).resolve().parents[1]
SPECS = lecture.load_presets()


def test_the_shipped_presets_load():
    assert len(SPECS) >= 8
    for spec in SPECS.values():
        assert spec.presets and spec.default == next(iter(spec.presets))
        assert 1.0 <= spec.scale <= lecture.MAX_SCALE
        assert re.fullmatch(r"\d\d_\w+", spec.lesson), f"{spec.name}: lesson {spec.lesson!r}"
        lessons = list((ROOT / "course").glob(f"{spec.lesson[:2]}_*.py"))  # none: the lesson is still planned
        assert not lessons or (ROOT / "course" / f"{spec.lesson}.py") in lessons, \
            f"{spec.name}: lesson {spec.lesson} is {lessons[0].stem} now"


@pytest.mark.parametrize("name", list(SPECS))
def test_every_preset_is_a_valid_call_of_its_factory(name):
    spec = SPECS[name]
    signature = inspect.signature(lecture.factory(spec))
    for preset, kwargs in spec.presets.items():
        try:
            signature.bind(**kwargs)
        except TypeError as error:
            pytest.fail(f"{name} preset {preset!r}: {error}")


def test_every_demo_has_a_section_in_the_lecture_notebook():
    source = (ROOT / "course" / "lecture_demos.py").read_text()
    shown = re.findall(r'lecture\.demo\("(\w+)"', source)
    assert sorted(shown) == sorted(SPECS) and len(shown) == len(set(shown))


def _write(tmp_path, demos) -> Path:
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"demos": demos}))
    return path


class Tiny:
    """A minimal widget object for the loader's tests: one small figure in a FigureView."""

    def __init__(self, points: int = 3, surface: str = "flat"):
        if surface != "flat":
            raise ValueError(f"surface must be 'flat', got {surface!r}")
        self.points = points
        self.fig, ax = new_figure(figsize=(2.0, 1.5), dpi=50)
        ax.plot(range(points))
        self.view = FigureView(self.fig)
        self.widget = __import__("ipywidgets").VBox([self.view.widget])


def tiny_widget(points: int = 3, surface: str = "flat") -> Tiny:
    return Tiny(points, surface)


GOOD = {"title": "t", "lesson": "07_optimizers", "factory": f"{__name__}:tiny_widget", "presets": {"a": {"points": 4}}}


@pytest.mark.parametrize("change, error, message", [
    ({"factory": "widgets.optimizer_race"}, ValueError, "factory must be 'module:function'"),
    ({"presets": {}}, ValueError, "presets must be a non-empty object"),
    ({"presets": {"a": [1, 2]}}, TypeError, "preset 'a' must be an object of keyword arguments, got list"),
    ({"scale": 5}, ValueError, r"scale must be a number in \[1, 3.0\], got 5"),
    ({"colour": "red"}, ValueError, r"unknown keys \['colour'\]"),
])
def test_a_malformed_entry_is_refused_with_what_is_wrong(tmp_path, change, error, message):
    with pytest.raises(error, match=message):
        lecture.load_presets(_write(tmp_path, {"race": {**GOOD, **change}}))


def test_missing_keys_bad_json_and_unknown_names_are_refused(tmp_path):
    entry = dict(GOOD)
    del entry["lesson"]
    with pytest.raises(ValueError, match=r"lacks the keys \['lesson'\]"):
        lecture.load_presets(_write(tmp_path, {"race": entry}))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        lecture.load_presets(bad)
    with pytest.raises(ValueError, match="non-empty 'demos'"):
        lecture.load_presets(_write(tmp_path, {}))
    specs = lecture.load_presets(_write(tmp_path, {"race": GOOD,
                                                    "ghost": {**GOOD, "factory": "widgets.nothing_here:f"}}))
    with pytest.raises(ValueError, match="unknown demo 'nope'"):
        lecture.build("nope", presets=specs)
    with pytest.raises(ValueError, match=r"has no preset 'b'; choose one of \['a'\]"):
        lecture.build("race", "b", presets=specs)
    with pytest.raises(ValueError, match="cannot import module 'widgets.nothing_here'"):
        lecture.build("ghost", presets=specs)
    with pytest.raises(ValueError, match=r"scale must be a number in \[1, 3.0\], got 0.5"):
        lecture.enlarge(object(), 0.5)


def test_build_enlarges_every_figure_and_its_png_view(tmp_path):
    specs = lecture.load_presets(_write(tmp_path, {"tiny": {**GOOD, "scale": 1.5}}))
    tiny = lecture.build("tiny", presets=specs)
    assert tiny.points == 4  # the preset's keyword argument reached the factory
    # a 2 x 1.5 inch figure at 50 dpi, enlarged 1.5 times; under Agg its view is a PNG image
    assert tiny.fig.dpi == pytest.approx(75)
    assert not tiny.view.interactive
    with Image.open(io.BytesIO(tiny.view.widget.value)) as png:
        assert png.size == (150, 112)  # 2 * 75 and 1.5 * 75 = 112.5 pixels, rounded down by Agg


def test_the_demo_switches_presets_and_keeps_the_old_widget_when_one_fails(tmp_path):
    entry = {**GOOD, "presets": {"short": {"points": 2}, "long": {"points": 9}, "broken": {"surface": "nowhere"}}}
    specs = lecture.load_presets(_write(tmp_path, {"tiny": entry}))
    demo = lecture.demo("tiny", presets=specs)
    assert demo.preset == "short" and demo.current.points == 2
    assert "cnnlab-demo" in demo.widget._dom_classes and "cnnlab-demo-tiny" in demo.widget._dom_classes
    assert list(demo.picker.options) == ["short", "long", "broken"]
    first = demo.current
    demo.select("long")
    assert demo.current is not first and demo.current.points == 9
    assert demo.holder.children == (demo.current.widget,)
    assert not plt.fignum_exists(first.fig.number), "the replaced widget's figure is closed"
    second = demo.current
    demo.picker.value = "broken"
    assert demo.current is second and demo.preset == "long"
    assert demo.status.kind == "error" and "surface must be 'flat', got 'nowhere'" in demo.status.text
    with pytest.raises(ValueError, match="has no preset 'x'"):
        demo.select("x")


def race_model(preset: str) -> RaceModel:
    """The race a preset of the optimizer race runs (its model only: no figure is drawn)."""
    kwargs = dict(SPECS["optimizer_race"].presets[preset])
    lrs = kwargs.pop("lrs", {})
    model = RaceModel(kwargs.pop("surface"), kwargs.pop("optimizers", None), kwargs.pop("steps"))
    assert not kwargs, f"race_model does not handle {sorted(kwargs)}"
    model.lrs.update(lrs)
    model.update()
    return model


def test_saddle_preset_momentum_overshoots_and_sgd_does_not():
    model = race_model("saddle: momentum overshoots")
    runs = model.runs
    assert set(runs) == {"SGD", "Momentum", "Nesterov"}
    assert model.start[0] > 0
    # on f = x² − y² the valley floor along x is x = 0: momentum crosses it, plain SGD approaches from one side
    assert runs["Momentum"].points[:, 0].min() < 0 < runs["SGD"].points[:, 0].min()


def test_bowl_preset_sgd_zig_zags_across_the_valley():
    y = race_model("bowl: SGD zig-zags at a large rate").runs["SGD"].points[:, 1]
    # lr 0.09 on the steep direction (curvature 20): each step multiplies y by 1 − 0.09·20 = −0.8
    assert np.allclose(y[1:6] / y[:5], -0.8)


@pytest.mark.parametrize("preset, regime", [("lr 0.1: good", "good"), ("lr 0.001: too small", "too small"),
                                            ("lr 3: too large", "too large")])
def test_learning_rate_presets_land_in_the_regime_they_name(preset, regime):
    explorer = lecture.build("lr_explorer", preset)  # under Agg the run trains synchronously
    assert explorer.run.finished and explorer.run.judge()[0] == regime, explorer.status.text


def test_init_presets_xavier_fades_and_he_holds_at_depth_20():
    xavier = lecture.build("init_explorer", "He vs Xavier at depth 20: Xavier with ReLU fades").model
    he = lecture.build("init_explorer", "He vs Xavier at depth 20: He with ReLU holds").model
    assert len(xavier.act_std) == len(he.act_std) == 20
    # ReLU halves the variance; Xavier's Var(w) = 1/fan (equal fans) does not make up for it: a factor of
    # about 2^-20 in variance, 2^-10 ≈ 1e-3 in std after 20 layers; He's Var(w) = 2/fan does
    assert xavier.act_std[-1] < 1e-2 * xavier.act_std[0]
    assert 0.3 < he.act_std[-1] / he.act_std[0] < 3
