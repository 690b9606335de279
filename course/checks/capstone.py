"""Lesson 10's capstone: a CNN built from the student's own answers to lessons 02, 04 and 09.

- `from_lesson(notebook_stem, *names, folder=None)`: the student's functions and classes `names`, read from
  the SAVED notebook `<notebook_stem>.ipynb` (in `folder`, by default the current one, else in a sibling
  folder `../*/`, where nbgrader puts each lesson). Only the lesson's top-level imports and the last
  top-level definition of each name run, in a fresh namespace: never its other cells (no training, no
  widgets). A name that is missing or still the exercise's placeholder is a CheckFailed saying so.
- `check_speed(net, loss_fn, X, y, steps, limit=240)`: times one training step of `net` (on a copy) and
  stops with a CheckFailed, before a run that would take more than `limit` seconds, with the measured time,
  the estimate and how to make the kernels fast.
"""
from __future__ import annotations

import ast
import copy
import inspect
import json
import linecache
import time
from pathlib import Path

from . import CheckFailed, has_placeholder, run_student

__all__ = ["from_lesson", "check_speed"]


def _find(stem: str, folder: Path) -> Path:
    here = folder / f"{stem}.ipynb"
    if here.is_file():
        return here
    siblings = sorted(folder.resolve().parent.glob(f"*/{stem}.ipynb"))
    if siblings:
        return siblings[0]
    raise CheckFailed(f"lesson notebook {stem}.ipynb not found: looked for {here.resolve()} and for "
                      f"{folder.resolve().parent / '*' / (stem + '.ipynb')}; open that lesson, run and save it "
                      "(or copy it next to this notebook)")


def _code_cells(path: Path) -> list[str]:
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = notebook["cells"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckFailed(f"{path} is not a readable notebook ({type(error).__name__}: {error}); open it in "
                          "Jupyter and save it again") from None
    sources = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            # IPython magics and shell lines are not Python: blank them (keeping the line numbers)
            sources.append("\n".join("" if line.lstrip().startswith(("%", "!")) else line
                                     for line in source.split("\n")))
    return sources


def _is_placeholder(obj) -> bool:
    if inspect.isclass(obj):
        return any(has_placeholder(f) for f in vars(obj).values() if inspect.isfunction(f))
    return has_placeholder(obj)


def from_lesson(notebook_stem: str, *names: str, folder=None) -> tuple:
    """The objects `names` as last defined at the top level of the saved notebook `<notebook_stem>.ipynb`.

    Inputs:
    - notebook_stem: e.g. "04_conv_layers"; names: functions or classes defined in that notebook.
    - folder: where to look first (default: the current folder); then its sibling folders.
    Returns a tuple, one object per name, in the order asked. The imports of every cell run first, then
    the definitions; a definition that reads other top-level variables of its lesson will not find them.
    """
    if not names:
        raise ValueError("from_lesson: name at least one function or class to load")
    path = _find(notebook_stem, Path.cwd() if folder is None else Path(folder))
    imports, definitions = [], {}
    for k, source in enumerate(_code_cells(path)):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # a cell that does not parse cannot hold a definition we can run
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports.append(ast.get_source_segment(source, node))
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = source.split("\n")[first - 1:node.end_lineno]
                definitions[node.name] = (k, "\n".join(lines))
    lesson = notebook_stem.split("_")[0]
    missing = [name for name in names if name not in definitions]
    if missing:
        raise CheckFailed(f"lesson {lesson}'s notebook {path} defines no {', '.join(missing)}: solve that exercise "
                          "there, run its cell and save the notebook")
    namespace = {"__name__": f"lesson_{notebook_stem}"}
    for statement in dict.fromkeys(imports):  # each import once, in order
        try:
            exec(compile(statement, f"<{path.name}: imports>", "exec"), namespace)
        except ImportError:
            pass  # a module this machine lacks; only matters if a loaded definition uses it
    for name in names:
        cell, text = definitions[name]
        filename = f"<{path.name}, cell {cell}: {name}>"
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)  # for inspect.getsource
        run_student(lambda: exec(compile(text, filename, "exec"), namespace),
                    f"lesson {lesson}'s definition of {name}")
        if _is_placeholder(namespace[name]):
            raise CheckFailed(f"lesson {lesson}'s {name} is still the exercise placeholder: solve it there and "
                              "save the notebook")
    print(f"read {', '.join(names)} from {path}")
    return tuple(namespace[name] for name in names)


def check_speed(net, loss_fn, X, y, steps: int, limit: float = 240.0) -> float:
    """Time one training step (forward, loss, backward) of a copy of `net` on the batch (X, y); CheckFailed
    if `steps` such steps would take more than `limit` seconds. Returns the estimate in seconds."""
    trial = copy.deepcopy(net).train()  # the real net keeps its state (batch norm, dropout's generator)

    def step():
        loss_fn.forward(trial(X), y)
        trial.backward(loss_fn.backward())

    start = time.perf_counter()
    run_student(step, "one training step of your network")
    seconds = time.perf_counter() - start
    estimate = seconds * steps
    if estimate > limit:
        raise CheckFailed(f"one training step of {len(X)} images took {seconds:.2f} s, so the {steps} steps of "
                          f"the capstone would take about {estimate / 60:.0f} minutes. Make your lesson-04 kernels "
                          "fast: loop over the KH x KW kernel offsets (i, j), not over the output pixels; for one "
                          "offset, xp[:, :, i:i + SH*OH:SH, j:j + SW*OW:SW] is the (N, C, OH, OW) block of inputs "
                          "that weight[:, :, i, j] meets, so each of formulas (1)-(3) is one array operation per "
                          "offset")
    return estimate
