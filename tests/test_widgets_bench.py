"""`python -m widgets bench`: it drives every control of every widget and reports a row for each.
Nothing here measures or compares wall-clock time."""
import json

import ipywidgets as W
import pytest

import widgets
from widgets import bench
from widgets.__main__ import main
from widgets.optimizer_race import LABELS

RACE_CONTROLS = {"surface", "steps", "momentum", "noise", "start_x", "start_y", "frame",
                 *(f"enable[{n}]" for n in LABELS), *(f"lr[{n}]" for n in LABELS)}


@pytest.fixture(scope="module")
def tiny_result():
    return bench.run_bench(repeats=1, tiny=True)


def test_the_bench_reports_every_widget(tiny_result):
    assert set(tiny_result["widgets"]) == set(bench.WIDGETS)
    assert set(bench.WIDGETS) == set(widgets.__all__)  # every widget the package exports, by its factory
    assert len(tiny_result["load_average"]["before"]) == 3 and tiny_result["cpus"] >= 1


def test_every_row_is_a_measurement_without_an_error(tiny_result):
    for name, entry in tiny_result["widgets"].items():
        assert entry["rows"], name
        for row in entry["rows"]:
            assert row["n"] == 1 and 0 <= row["median_ms"] <= row["worst_ms"], (name, row)
            assert row.get("errors", 0) == 0, f"{name} {row['control']}: {row.get('error')}"


def test_the_race_has_a_row_for_each_of_its_controls(tiny_result):
    rows = {row["control"] for row in tiny_result["widgets"]["optimizer_race"]["rows"]}
    assert rows == RACE_CONTROLS  # the Play button is measured through the slider it drives


def test_every_enabled_control_of_every_widget_has_a_row(tiny_result):
    builders = bench._widgets(tiny=True)
    for name in ("init_explorer", "loss_explorer", "step_size_explorer", "dataset_gallery", "momentum_explorer"):
        view = builders[name]()
        named = {n for n, c in bench.controls_of(view) if not c.disabled}
        shown = [w for w in _walk(view.widget) if isinstance(w, (W.Button, W.Checkbox, W.Dropdown, W.ToggleButtons,
                                                                 W.IntSlider, W.FloatSlider, W.FloatLogSlider,
                                                                 W.SelectionSlider)) and not w.disabled]
        assert len(named) == len(shown), name
        rows = {row["control"] for row in tiny_result["widgets"][name]["rows"] if row["kind"] in ("redraw", "answer")}
        assert rows == named, name


def test_the_init_explorer_measures_in_the_background_and_its_picture_follows(tiny_result):
    rows = {row["control"]: row for row in tiny_result["widgets"]["init_explorer"]["rows"]}
    assert rows["depth"]["kind"] == "answer" and rows["depth -> 1st frame"]["kind"] == "frame"
    assert rows["std"]["kind"] == "redraw"  # xavier_normal has no std: nothing to measure


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_training_controls_answer_and_are_stopped(tiny_result):
    rows = {row["control"]: row for row in tiny_result["widgets"]["training_dashboard"]["rows"]}
    assert rows["train_button"]["kind"] == "answer"
    assert rows["train_button -> Stop"]["kind"] == "halt"
    assert rows["train_button -> 1st frame"]["kind"] == "frame"
    for name in ("cnn_race", "regularization_explorer", "lr_explorer", "training_dashboard"):
        kinds = {row["kind"] for row in tiny_result["widgets"][name]["rows"]}
        assert {"answer", "halt"} <= kinds, name


def test_a_slider_moves_five_steps_and_a_menu_to_its_next_entry():
    assert bench._moved(W.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01)) == pytest.approx(0.95)
    slider = W.FloatSlider(value=0.96, min=0.0, max=0.99, step=0.01)
    assert bench._moved(slider) == pytest.approx(0.91)  # 1.01 would pass the top: five steps down
    assert bench._moved(W.IntSlider(value=20, min=1, max=50)) == 25
    log = W.FloatLogSlider(value=0.1, base=10, min=-4, max=2, step=0.05)
    assert bench._moved(log) == pytest.approx(10 ** -0.75)
    menu = W.Dropdown(options=[("choose...", None), ("a", "a"), ("b", "b")], value=None)
    assert bench._moved(menu) == "a"
    assert bench._moved(W.Dropdown(options=["a", "b"], value="b")) == "a"
    assert bench._moved(W.Checkbox(value=True)) is False


def test_the_command_line_prints_json_for_one_widget(capsys):
    main(["bench", "--tiny", "--repeats", "1", "--widget", "loss_explorer", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert list(result["widgets"]) == ["loss_explorer"]
    assert {row["control"] for row in result["widgets"]["loss_explorer"]["rows"]} >= {"target", "preset"}


def test_the_command_line_prints_a_table_and_refuses_unknown_widgets(capsys):
    main(["bench", "--tiny", "--repeats", "1", "--widget", "step_size_explorer"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["widget", "control"] and "step_size_explorer" in out and "load average" in out
    with pytest.raises(SystemExit, match="unknown widget"):
        main(["bench", "--widget", "nope"])
    with pytest.raises(SystemExit, match="--repeats must be at least 1"):
        main(["bench", "--repeats", "0"])
