"""The helpers every exercise self-check shares (course/checks/__init__.py)."""
import numpy as np
import pytest

from checks import CheckFailed, check_array


def test_check_array_reports_placeholder_shape_nan_and_first_wrong_entry():
    with pytest.raises(CheckFailed, match=r"still Ellipsis"):
        check_array("a", ..., np.zeros(2))
    with pytest.raises(CheckFailed, match=r"shape \(2,\), got \(3,\)"):
        check_array("a", np.zeros(3), np.zeros(2))
    with pytest.raises(CheckFailed, match=r"NaN or infinity at \[1\]"):
        check_array("a", [0.0, np.nan], np.zeros(2))
    with pytest.raises(CheckFailed, match=r"`a`\[1\] is 5 but should be 0 \(1 of 2 entries differ\)"):
        check_array("a", [0.0, 5.0], np.zeros(2))
    check_array("a", [0.0, 1e-9], np.zeros(2))  # within tolerance: no exception


def test_check_failed_renders_as_one_line_in_ipython():
    assert CheckFailed("x is wrong")._render_traceback_() == ["\u2717 Not yet: x is wrong"]


def test_student_array_names_a_placeholder_a_missing_return_and_a_non_number():
    from checks import student_array
    with pytest.raises(CheckFailed, match=r"g is still Ellipsis: replace the `...`"):
        student_array("g", ...)
    with pytest.raises(CheckFailed, match=r"did you forget `return`\?"):
        student_array("g", None)
    with pytest.raises(CheckFailed, match="g should be a numeric array, got dict"):
        student_array("g", {})
    original = np.array([1, 2])
    got = student_array("g", original)
    assert got.dtype == np.float64 and np.array_equal(got, [1.0, 2.0]) and got is not original


def test_run_student_turns_an_error_into_one_line_and_passes_check_failures_on():
    from checks import run_student
    assert run_student(lambda: 3, "f(x)") == 3
    with pytest.raises(CheckFailed, match=r"^f\(x\) raised ZeroDivisionError: division by zero$"):
        run_student(lambda: 1 / 0, "f(x)")
    with pytest.raises(CheckFailed, match="^already explained$"):
        run_student(lambda: (_ for _ in ()).throw(CheckFailed("already explained")), "f(x)")


def test_placeholder_hints_at_return_only_for_what_a_call_returned():
    from checks import placeholder
    with pytest.raises(CheckFailed, match=r"^`dW` is still None: replace the `\.\.\.` with your code"):
        placeholder("`dW`", None, returned=False)
    with pytest.raises(CheckFailed, match=r"^f\(x\) is still None \(did you forget `return`\?\)"):
        placeholder("f(x)", None)
    with pytest.raises(CheckFailed, match=r"^`dW` is still Ellipsis: replace"):
        placeholder("`dW`", ..., returned=False)
    placeholder("`dW`", 0.0)  # an answer, even 0: no exception


def test_student_array_checks_the_shape_when_given():
    from checks import student_array
    with pytest.raises(CheckFailed, match=r"^`m` should have shape \(3, 4\), got \(4, 3\)$"):
        student_array("`m`", np.zeros((4, 3)), (3, 4))
    assert student_array("`m`", np.ones((3, 4)), (3, 4)).shape == (3, 4)


def test_run_student_adds_a_hint_names_a_left_over_placeholder_and_can_silence_numpy():
    from checks import run_student

    def shapes_clash():
        return np.ones((2, 3)) @ np.ones((2, 3))

    with pytest.raises(CheckFailed, match=r"raised ValueError: .*matmul.* \(transpose!\)$"):
        run_student(shapes_clash, "f()", hint=(("matmul",), " (transpose!)"))
    with pytest.raises(CheckFailed, match=r"^f\(\) raised ZeroDivisionError: division by zero$"):
        run_student(lambda: 1 / 0, "f()", hint=(("matmul",), " (transpose!)"))  # no hint: other words

    def unfinished(x):
        return x + ...  # the exercise's placeholder, still there

    with pytest.raises(CheckFailed, match=r"^unfinished\(1\) still contains `\.\.\.`"):
        run_student(lambda: unfinished(1), "unfinished(1)", fn=unfinished)
    with pytest.raises(CheckFailed, match=r"^f\(\) raised FloatingPointError"):
        with np.errstate(over="raise"):
            run_student(lambda: np.exp(np.array([1000.0])), "f()")
    with np.errstate(over="raise"):
        assert run_student(lambda: np.exp(np.array([1000.0])), "f()", quiet=True)[0] == np.inf


def test_same_compares_shape_then_values_within_tolerance():
    from checks import same
    assert same([1.0, 2.0], np.array([1.0, 2.0 + 1e-9]), rtol=0, atol=1e-8)
    assert not same([1.0, 2.0], np.array([1.0, 2.1]), rtol=0, atol=1e-8)
    assert not same(np.zeros((2, 1)), np.zeros(2), rtol=1, atol=1)  # broadcastable is not the same
    assert same([np.nan], [np.nan], rtol=0, atol=0, equal_nan=True) and not same([np.nan], [np.nan], rtol=0, atol=0)


def test_name_mistake_raises_the_first_matching_message_and_skips_what_is_no_mistake_here():
    from checks import name_mistake

    def like(a, b):
        return abs(a - b) < 1e-9

    mistakes = [(None, "not computable here"), (2.0, "doubled"), (3.0, "tripled"), (2.0, "doubled again")]
    with pytest.raises(CheckFailed, match=r"^x = 2: doubled$"):
        name_mistake(2.0, mistakes, like, prefix="x = 2: ")
    name_mistake(5.0, mistakes, like)                    # like no mistake: no exception
    name_mistake(2.0, mistakes[1:2], like, right=2.0)    # the 'mistake' gives the right answer here: skipped
    with pytest.raises(CheckFailed, match="^tripled$"):
        name_mistake(3.0, mistakes, like, right=2.0)


def test_has_placeholder_sees_the_exercises_dots_but_not_an_index():
    from checks import has_placeholder

    def bare_body(x):
        ...

    def as_value(x):
        y = ...
        return y

    def returned(x):
        return x, ...

    def as_index(p):
        p[...] = 0
        return p[..., 0]

    def finished(x):
        return 2 * x

    assert has_placeholder(bare_body) and has_placeholder(as_value) and has_placeholder(returned)
    assert not has_placeholder(as_index) and not has_placeholder(finished)
