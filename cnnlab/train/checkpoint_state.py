"""A Trainer's whole state as checkpoint contents, checked against a trainer before anything is loaded.

Callbacks that keep state across a resume (EarlyStopping: its counters and best weights) provide
`checkpoint_state() -> (JSON dict, {weight name: array}: none, or a whole state_dict of the network)`,
`check_checkpoint_state(state, epoch, has_weights)` (ValueError if it does not fit) and
`load_checkpoint_state(state, weights)`.

`save_trainer` turns the state into arrays ("net/<name>", "optimizer/<i>/<key>") and a JSON header
(see cnnlab.train.checkpoint for the file format); `read_checkpoint` reads a file back and, given a
trainer, refuses it (CheckpointError naming the file and each difference) unless every part fits
that trainer: the architecture (names, shapes, dtypes), the optimizer's type and hyper-parameter
layout, the random generators, the scheduler. `load_trainer` validates everything first, then
changes the trainer: all or nothing.
"""
from __future__ import annotations

import json

import numpy as np

from cnnlab.train.checkpoint import (CheckpointError, _generators, check_generator_state, generator_states,
                                     read_archive, set_generator_states, write_archive)
from cnnlab.train.history import History

__all__ = ["save_trainer", "read_checkpoint", "load_trainer"]

_TOP = {"format", "arrays", "meta", "epoch", "global_step", "history", "generators", "scheduler", "optimizer",
        "callbacks"}


def save_trainer(trainer, path, meta=None) -> None:
    """Write `trainer`'s state (between epochs) and the JSON-able dict `meta` to `path` atomically."""
    if trainer._batches is not None:
        raise RuntimeError("a checkpoint is taken between epochs: this epoch is only partly done")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict of JSON values, got {type(meta).__name__}")
    try:
        meta = json.loads(json.dumps(meta or {}))
    except (TypeError, ValueError) as error:
        raise TypeError(f"meta must hold JSON values only: {error}") from None
    opt = trainer.optimizer
    index = {id(p): i for i, p in enumerate(opt.parameters())}
    arrays = {f"net/{name}": value for name, value in trainer.net.state_dict().items()}
    scalars = {}
    for p, state in opt.state.items():
        i = index[id(p)]
        scalars[str(i)] = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        arrays.update((f"optimizer/{i}/{k}", v) for k, v in state.items() if isinstance(v, np.ndarray))
    sched = trainer.scheduler
    header = {
        "meta": meta, "epoch": trainer.epoch, "global_step": trainer.global_step,
        "history": trainer.history.to_dict(),
        "generators": {"shuffle": _state_of(trainer.loader.rng), "augment": _state_of(trainer.augment_rng),
                       "layers": generator_states(trainer.net)},
        "callbacks": _callback_states(trainer, arrays),
        "scheduler": None if sched is None else {
            "type": type(sched).__name__, "attributes": {k: v for k, v in vars(sched).items() if k != "optimizer"}},
        "optimizer": {"type": type(opt).__name__, "state": scalars,
                      "groups": [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]}}
    write_archive(path, arrays, header)


def _stateful_callbacks(trainer) -> dict:
    """{position: callback} for the trainer's callbacks that keep state across a resume (`checkpoint_state`)."""
    return {str(i): c for i, c in enumerate(trainer.callbacks) if hasattr(c, "checkpoint_state")}


def _callback_states(trainer, arrays: dict) -> dict:
    """Each stateful callback's JSON state, {position: {"type", "state"}}; its weights go into `arrays`."""
    states = {}
    for i, callback in _stateful_callbacks(trainer).items():
        state, weights = callback.checkpoint_state()
        states[i] = {"type": type(callback).__name__, "state": state}
        arrays.update((f"callback/{i}/{name}", value) for name, value in weights.items())
    return states


def _state_of(gen):
    return None if gen is None else gen.bit_generator.state


def read_checkpoint(path, trainer=None, arrays: bool = True) -> dict:
    """Read a checkpoint written by `Trainer.save`; no code in the file ever runs (no pickle).

    Returns {"meta", "epoch", "global_step", "history" (a History), "generators", "scheduler",
    "optimizer", "net" ({name: array})}. With `trainer`, the file must fit it (see the module docstring);
    that is checked from the header before any array data is read. arrays=False reads the header only
    (then "net" is empty and the optimizer state holds no arrays). Raises FileNotFoundError or
    CheckpointError (a ValueError) naming the file and what is wrong.
    """
    max_bytes = None
    if trainer is not None:  # the arrays this trainer can hold, twice over, plus room for a long history
        net_bytes = sum(v.nbytes for v in trainer.net.state_dict().values())
        max_bytes = 2 * net_bytes + 16 * sum(p.data.nbytes for p in trainer.optimizer.parameters()) + 2 ** 28

    def check(header):
        _check_header(header)
        if trainer is not None:
            _check_fits(header, trainer)

    contents = read_archive(path, check, max_bytes, with_arrays=arrays)
    arrays = contents.pop("arrays")
    contents["net"] = {k[4:]: v for k, v in arrays.items() if k.startswith("net/")}
    state = {int(i): dict(s) for i, s in contents["optimizer"]["state"].items()}
    for key, value in arrays.items():
        if key.startswith("optimizer/"):
            _, i, name = key.split("/")
            state[int(i)][name] = value
    contents["optimizer"]["state"] = state
    for i, entry in contents["callbacks"].items():
        entry["weights"] = {k.split("/", 2)[2]: v for k, v in arrays.items() if k.startswith(f"callback/{i}/")}
    contents.pop("format")
    return contents


def load_trainer(trainer, path):
    """Restore `trainer` from `path`: every check passes first, then every part is set."""
    state = read_checkpoint(path, trainer)
    trainer.net.load_state_dict(state["net"])
    trainer.optimizer.load_state_dict({"groups": state["optimizer"]["groups"], "state": state["optimizer"]["state"]})
    set_generator_states(trainer.net, state["generators"]["layers"])
    for gen, saved in ((trainer.loader.rng, state["generators"]["shuffle"]),
                       (trainer.augment_rng, state["generators"]["augment"])):
        if gen is not None:
            gen.bit_generator.state = saved
    if trainer.scheduler is not None:
        vars(trainer.scheduler).update(state["scheduler"]["attributes"])
    for i, callback in _stateful_callbacks(trainer).items():
        saved = state["callbacks"][i]
        callback.load_checkpoint_state(saved["state"], saved["weights"])
    trainer.history, trainer.epoch, trainer.global_step = state["history"], state["epoch"], state["global_step"]
    trainer._batches = None
    return trainer


# --- checks: raise CheckpointError saying what is wrong (read_archive adds the file name) --------------
def _check_header(h: dict) -> None:
    """The header's own structure, whatever trainer it is for."""
    if set(h) != _TOP:
        raise CheckpointError(f"header entries missing {sorted(_TOP - set(h))}, unexpected {sorted(set(h) - _TOP)[:5]}")
    for key in ("epoch", "global_step"):
        if type(h[key]) is not int or h[key] < 0:
            raise CheckpointError(f"{key} is {str(h[key])[:40]}, expected a whole number >= 0")
    if not isinstance(h["meta"], dict):
        raise CheckpointError(f"meta is a JSON {type(h['meta']).__name__}, expected an object")
    try:
        h["history"] = History.from_dict(h["history"])
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if h["epoch"] != len(h["history"].epochs) or h["global_step"] != len(h["history"].steps):
        raise CheckpointError(f"epoch {h['epoch']} and step {h['global_step']} do not match the history's "
                              f"{len(h['history'].epochs)} epochs and {len(h['history'].steps)} steps")
    gens = h["generators"]
    if not isinstance(gens, dict) or set(gens) != {"shuffle", "augment", "layers"} \
            or not isinstance(gens["layers"], dict):
        raise CheckpointError("generators must be an object with shuffle, augment and layers")
    for state in [gens["shuffle"], gens["augment"], *gens["layers"].values()]:
        if state is not None:
            check_generator_state(state)
    sched = h["scheduler"]
    if sched is not None and not (isinstance(sched, dict) and set(sched) == {"type", "attributes"}
                                  and isinstance(sched["type"], str) and isinstance(sched["attributes"], dict)):
        raise CheckpointError("scheduler must be null or an object with type and attributes")
    opt = h["optimizer"]
    if not (isinstance(opt, dict) and set(opt) == {"type", "groups", "state"} and isinstance(opt["type"], str)
            and isinstance(opt["groups"], list) and all(isinstance(g, dict) for g in opt["groups"])
            and isinstance(opt["state"], dict)):
        raise CheckpointError("optimizer must be an object with type, groups (a list of objects) and state")
    for i, s in opt["state"].items():
        if not (i.isdigit() and str(int(i)) == i and isinstance(s, dict) and type(s.get("step")) is int
                and all(type(v) in (int, float, bool) for v in s.values())):
            raise CheckpointError(f"optimizer state {i[:20]!r} must be an object with an integer step and numbers")
    for key in h["arrays"]:
        if key.startswith("optimizer/") and key.split("/")[1] not in opt["state"]:
            raise CheckpointError(f"array {key!r} belongs to no parameter in the optimizer state")
    calls = h["callbacks"]
    if not (isinstance(calls, dict) and all(isinstance(c, dict) and set(c) == {"type", "state"}
                                            and isinstance(c["type"], str) and isinstance(c["state"], dict)
                                            for c in calls.values())):
        raise CheckpointError("callbacks must be an object of {type, state} objects")
    for key in h["arrays"]:
        if key.startswith("callback/") and key.split("/")[1] not in calls:
            raise CheckpointError(f"array {key!r} belongs to no callback in the header")


def _check_fits(h: dict, trainer) -> None:
    """Every part of the header fits `trainer`; converts JSON lists back to tuples where the trainer has them."""
    declared = {k[4:]: (tuple(s["shape"]), np.dtype(s["dtype"]))
                for k, s in h["arrays"].items() if k.startswith("net/")}
    own = {k: (v.shape, v.dtype) for k, v in trainer.net.state_dict().items()}
    missing, unexpected = sorted(set(own) - set(declared)), sorted(set(declared) - set(own))
    differ = [f"{k} {declared[k][1]} {declared[k][0]} in the file, {own[k][1]} {own[k][0]} here"
              for k in own if k in declared and declared[k] != own[k]]
    if missing or unexpected or differ:
        raise CheckpointError("it was saved from another architecture: " + "; ".join(
            ([f"missing {missing[:10]}"] if missing else []) + ([f"unexpected {unexpected[:10]}"] if unexpected else [])
            + differ[:10]))
    opt, saved = trainer.optimizer, h["optimizer"]
    if saved["type"] != type(opt).__name__:
        raise CheckpointError(f"it holds the state of a {saved['type'][:40]} optimizer, this trainer uses "
                              f"{type(opt).__name__}")
    if len(saved["groups"]) != len(opt.param_groups):
        raise CheckpointError(f"it has {len(saved['groups'])} parameter groups, the optimizer has "
                              f"{len(opt.param_groups)}")
    saved["groups"] = [_fit(g, {k: v for k, v in mine.items() if k != "params"}, f"parameter group {n}", loose=True)
                       for n, (g, mine) in enumerate(zip(saved["groups"], opt.param_groups))]
    for n, (g, mine) in enumerate(zip(saved["groups"], opt.param_groups)):
        try:  # the optimizer's own range checks (eps > 0, ...), now: loading must not fail half-way
            opt._checked({**mine, **g}, f" (parameter group {n})")
        except (TypeError, ValueError) as error:
            raise CheckpointError(str(error)) from None
    params = opt.parameters()
    for i in saved["state"]:
        if int(i) >= len(params):
            raise CheckpointError(f"optimizer state for parameter {i}, the optimizer has {len(params)}")
    held = {i: set(s) for i, s in saved["state"].items()}
    for key in h["arrays"]:
        if key.startswith("optimizer/"):
            held[key.split("/")[1]].add(key.split("/")[2])
    trained = {str(i) for i, p in enumerate(params) if p.requires_grad}
    if held and (set(held) != trained or len({frozenset(k) for k in held.values()}) > 1):
        raise CheckpointError(f"its optimizer state covers parameters {sorted(held, key=int)[:20]} with entries "
                              f"{sorted(set().union(*held.values()))}, unevenly or not the {len(trained)} trained ones")
    for key, spec in h["arrays"].items():
        if key.startswith("optimizer/"):
            p = params[int(key.split("/")[1])]
            if tuple(spec["shape"]) != p.shape or np.dtype(spec["dtype"]).kind != "f":
                raise CheckpointError(f"optimizer array {key!r} is {spec['dtype']} {tuple(spec['shape'])}, "
                                      f"its parameter is {p.dtype} {p.shape}")
    gens = h["generators"]
    for name, gen in (("shuffle", trainer.loader.rng), ("augment", trainer.augment_rng)):
        if (gens[name] is None) != (gen is None):
            raise CheckpointError(f"it was saved {'without' if gens[name] is None else 'with'} a {name} "
                                  f"random generator, this trainer has {'one' if gen is not None else 'none'}")
        if gen is not None:
            check_generator_state(gens[name], gen)
    layers = _generators(trainer.net)
    if set(layers) != set(gens["layers"]):
        raise CheckpointError(f"its layer random generators {sorted(gens['layers'])[:10]} are not the network's "
                              f"{sorted(layers)}: another architecture")
    for key, state in gens["layers"].items():
        check_generator_state(state, layers[key])
    sched, mine = h["scheduler"], trainer.scheduler
    if (sched is None) != (mine is None) or (sched is not None and sched["type"] != type(mine).__name__):
        raise CheckpointError(f"its learning-rate schedule is {sched and sched['type'][:40]}, this trainer's is "
                              f"{mine and type(mine).__name__}")
    if sched is not None:
        sched["attributes"] = _fit(sched["attributes"], {k: v for k, v in vars(mine).items() if k != "optimizer"},
                                   f"the {sched['type']} schedule")
    _check_callbacks_fit(h, trainer, own)


def _check_callbacks_fit(h: dict, trainer, own: dict) -> None:
    """The file's callback states belong to callbacks of the same kinds at the same positions, agree with
    each one's settings (its `check_checkpoint_state`), and hold only weights of this network."""
    saved, mine = h["callbacks"], _stateful_callbacks(trainer)
    kinds = {i: c["type"] for i, c in saved.items()}
    if kinds != {i: type(c).__name__ for i, c in mine.items()}:
        raise CheckpointError(f"it was saved with the callbacks {kinds or 'none that keep state'}, this trainer has "
                              f"{ {i: type(c).__name__ for i, c in mine.items()} or 'none that keep state'}")
    for key, spec in h["arrays"].items():
        if key.startswith("callback/"):
            name = key.split("/", 2)[2]
            if own.get(name) != (tuple(spec["shape"]), np.dtype(spec["dtype"])):
                raise CheckpointError(f"callback array {key!r} ({spec['dtype']} {tuple(spec['shape'])}) is not a "
                                      f"weight of this network")
    for i, callback in mine.items():
        names = {k.split("/", 2)[2] for k in h["arrays"] if k.startswith(f"callback/{i}/")}
        if names and names != set(own):
            raise CheckpointError(f"its {kinds[i]} keeps weights {sorted(names)[:10]}, not all of the network's "
                                  f"{sorted(own)[:10]}")
        try:
            callback.check_checkpoint_state(saved[i]["state"], h["epoch"], bool(names))
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"its {kinds[i]} state does not fit: {error}") from None


def _fit(saved: dict, current: dict, where: str, loose: bool = False) -> dict:
    """`saved` with the keys of `current` and values of the same kinds (tuples restored), else CheckpointError.

    loose: an int and a float may stand for each other (hyper-parameters such as momentum=0 vs 0.9)."""
    if set(saved) != set(current):
        raise CheckpointError(f"{where} has settings {sorted(saved)[:10]}, expected {sorted(current)}")
    return {k: _fit_value(saved[k], current[k], f"{where}: {k}", loose) for k in current}


def _fit_value(saved, current, where, loose=False):
    if isinstance(current, np.generic):
        current = current.item()
    if isinstance(current, bool) or current is None or isinstance(current, str):
        ok = type(saved) is type(current)
    elif isinstance(current, int):
        ok = type(saved) is int or (loose and type(saved) is float)
    elif isinstance(current, float):
        ok = type(saved) in (int, float)
        saved = saved if loose or not ok else float(saved)
    elif isinstance(current, (list, tuple)):
        ok = isinstance(saved, list) and len(saved) == len(current)
        if ok:
            return type(current)(_fit_value(s, c, where, loose) for s, c in zip(saved, current))
    else:
        ok = False
    if not ok:
        raise CheckpointError(f"{where} is {str(saved)[:40]}, expected a value like {str(current)[:40]}")
    return saved
