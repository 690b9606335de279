"""WidgetView, the base of every widget's view: guarded callbacks, the syncing guard, display."""
import ipywidgets as W
import pytest

from widgets._view import COALESCE_SECONDS, WidgetView


class Counter(WidgetView):
    """A minimal view: one slider; every change the user makes is counted, the view's own moves are not."""

    def __init__(self):
        super().__init__()
        self.slider = W.IntSlider(value=0, min=0, max=10)
        self.other = W.IntSlider(value=0, min=0, max=10)
        self.seen = []
        self.observe(self._on_change, self.slider, self.other)
        self.widget = W.VBox([self.slider, self.other, self.status.widget])

    def _on_change(self, change):
        if change["new"] == 7:
            raise ValueError("seven is not allowed")
        self.seen.append(change["new"])
        with self.syncing():  # the view moves the other slider: no second callback, no loop
            self.other.value = change["new"]


def test_observed_controls_call_back_but_not_while_the_view_syncs_them():
    view = Counter()
    view.slider.value = 3
    assert view.seen == [3] and view.other.value == 3  # the sync of `other` did not call back
    view.other.value = 5                                # the user moving `other` does
    assert view.seen == [3, 5]
    with view.syncing(), view.syncing():                # nested blocks: quiet until the outer one ends
        view.slider.value = 4
    assert view.seen == [3, 5]
    view.slider.value = 6
    assert view.seen == [3, 5, 6]


def test_a_failing_callback_becomes_the_status_line_not_a_traceback():
    view = Counter()
    view.slider.value = 7                               # raises inside the callback
    assert view.status.kind == "error" and view.status.text == "Something went wrong: seven is not allowed"
    assert view.seen == [] and view._syncing == 0
    view.show_error(RuntimeError("disk full"))
    assert view.status.text == "Something went wrong: disk full"


def test_displaying_the_view_displays_its_widget():
    view = Counter()
    assert view._repr_mimebundle_() == view.widget._repr_mimebundle_()
    with pytest.raises(TypeError, match="Bare has no .widget to display"):
        type("Bare", (WidgetView,), {})()._repr_mimebundle_()


def test_push_to_model_copies_each_control_into_the_field_of_its_name_then_updates():
    class Model:
        a, b, updates = 0, "x", []

        def update(self):
            self.updates.append((self.a, self.b))

    class View(WidgetView):
        def __init__(self):
            super().__init__()
            self.model = Model()
            self.slider, self.menu = W.IntSlider(value=3), W.Dropdown(options=["x", "y"], value="y")
            self.widget = W.VBox([self.slider, self.menu, self.status.widget])

    view = View()
    view.push_to_model(a=view.slider, b=view.menu)
    assert (view.model.a, view.model.b) == (3, "y") and view.model.updates == [(3, "y")]


# --- a burst of changes from the browser reaches the callback once --------------------------------------------
def test_a_burst_of_browser_changes_reaches_the_callback_once_with_the_latest_value():
    import asyncio

    view, slider, calls = WidgetView(), W.IntSlider(max=10), []
    view.observe(lambda change: calls.append(change["new"]), slider)

    async def drag():
        for value in range(2, 7):  # what the comm handler does with each message of a slider drag
            slider.set_state({"value": value})
        assert calls == []  # nothing yet: the burst is still coming
        await asyncio.sleep(10 * COALESCE_SECONDS)
        assert calls == [6]  # one callback, with the latest value
        slider.value = 9  # a change made in Python, inside the loop, is handled at once
        assert calls == [6, 9]

    asyncio.run(drag())


def test_browser_changes_outside_an_event_loop_are_handled_at_once():
    view, slider, calls = WidgetView(), W.IntSlider(max=10), []
    view.observe(lambda change: calls.append(change["new"]), slider)
    slider.set_state({"value": 3})
    slider.set_state({"value": 4})
    assert calls == [3, 4]
