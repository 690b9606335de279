"""Checkpoint files: no code runs from them, every damaged or foreign file is refused with one error type."""
import io
import math
import json
import zipfile

import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.layers import BatchNorm1d, Dropout, Linear, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import SGD, Adam, CosineAnnealingLR, OneCycleLR, StepLR
from cnnlab.train import (CheckpointError, EarlyStopping, ModelCheckpoint, Trainer, read_checkpoint,
                          remove_stale_temporaries)
from cnnlab.train.checkpoint import atomic_write_bytes


def blobs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])[y] + 0.4 * rng.standard_normal((n, 2))).astype(np.float32)
    return X, y.astype(np.int64)


def build(seed=0, hidden=6, optimizer=Adam, val_scale=1, patience=5, **kwargs):
    """A small trainer; with `patience`, an EarlyStopping whose state (and best weights) checkpoints keep."""
    X, y = blobs()
    if patience is not None:
        kwargs.setdefault("callbacks", [EarlyStopping(patience=patience, min_delta=1e-3)])
    net = Sequential([Linear(2, hidden, rng=seed), BatchNorm1d(hidden), ReLU(), Dropout(0.8, rng=seed + 1),
                      Linear(hidden, 3, rng=seed + 2)])  # batch norm: 0-d buffers too
    opt = optimizer(net.parameters(), lr=0.01)
    with np.errstate(over="ignore"):
        X_val = X * np.float32(val_scale)
    return Trainer(net, CrossEntropyLoss(), opt, X, y, batch_size=8, rng=seed, X_val=X_val, y_val=y,
                   scheduler=StepLR(opt, step_size=1, gamma=0.5), **kwargs)


def snapshot(trainer):
    """Everything a checkpoint restores, as comparable plain values."""
    opt = trainer.optimizer
    index = {id(p): i for i, p in enumerate(opt.parameters())}
    return {"net": {k: v.tolist() for k, v in trainer.net.state_dict().items()},
            "opt_state": {index[id(p)]: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                          for p, s in opt.state.items()},
            "groups": [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
            "rngs": [trainer.loader.rng.bit_generator.state, trainer.net[3]._rng.bit_generator.state],
            "scheduler": {k: v for k, v in vars(trainer.scheduler).items() if k != "optimizer"},
            "history": trainer.history.to_dict(), "epoch": trainer.epoch, "step": trainer.global_step,
            "callbacks": [(state, {k: v.tolist() for k, v in weights.items()}) for state, weights in
                          (c.checkpoint_state() for c in trainer.callbacks if hasattr(c, "checkpoint_state"))]}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "good.ckpt"
    trainer = build()
    trainer.fit(epochs=2, progress=False)
    trainer.save(path, meta={"width": 6, "note": "fuzz"})
    return path, path.read_bytes(), snapshot(build(seed=5).load(path))


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # unpickling this creates the marker file


def test_a_pickle_payload_is_refused_and_runs_nothing(tmp_path):
    import pickle

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"format": "cnnlab-checkpoint-1", "x": Payload(marker)}))
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        build().load(evil)
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        read_checkpoint(evil)
    # an .npz whose arrays are pickled objects: np.load(allow_pickle=False) must never unpickle them
    buffer = io.BytesIO()
    np.savez(buffer, header=np.array([Payload(marker)], dtype=object), allow_pickle=True)
    evil.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        build().load(evil)
    assert not marker.exists()


def test_meta_and_state_round_trip(saved):
    path, _, state = saved
    contents = read_checkpoint(path)
    assert contents["meta"] == {"width": 6, "note": "fuzz"} and contents["epoch"] == 2
    assert contents["history"].status == "completed" and len(contents["history"].epochs) == 2
    assert state["epoch"] == 2 and state["scheduler"]["last_epoch"] == 2


def rezip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def header_paths(value, prefix=()):
    """Every path into the JSON header (except the free-form meta), for mutations."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            if prefix + (k,) != ("meta",):
                yield from header_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from header_paths(v, prefix + (i,))


def kind(v):
    return "number" if type(v) in (int, float) else type(v).__name__


def variants(good: bytes, rng):
    """Damaged and forged versions of a good checkpoint, each with a label."""
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    paths = [p for p in header_paths(header) if p]
    arrays = [n for n in members if n != "header.npy"]
    for _ in range(600):
        yield "truncated", good[:rng.integers(0, len(good))]
    for _ in range(900):
        data = bytearray(good)
        for at in rng.integers(0, len(data), rng.integers(1, 4)):
            data[at] ^= int(rng.integers(1, 256))
        yield "flipped", bytes(data)
    for _ in range(100):
        yield "garbage", rng.integers(0, 256, rng.integers(0, 3000)).astype(np.uint8).tobytes()
    for _ in range(200):
        name = arrays[rng.integers(len(arrays))]
        m = dict(members)
        choice = rng.integers(5)
        if choice == 0:
            del m[name]
        elif choice == 1:
            m["net/extra.npy" if rng.integers(2) else name.replace(".npy", "x.npy")] = m.pop(name)
        elif choice == 2:
            shape = np.load(io.BytesIO(m[name])).shape
            m[name] = npy(np.zeros(tuple(s + 1 for s in shape) or (2,), np.float32))
        elif choice == 3:
            m[name] = npy(np.load(io.BytesIO(m[name])).astype(np.float64))
        else:
            m[name] = npy(np.array([{"a": 1}], dtype=object), allow_pickle=True)
        yield f"member {name} ({choice})", rezip(m)
    replacements = ["text", [], {}, True, [1, "a"], {"zz": 1}, 2 ** 70]
    for _ in range(700):
        h = json.loads(json.dumps(header))
        path = paths[rng.integers(len(paths))]
        parent = h
        for key in path[:-1]:
            parent = parent[key]
        old = parent[path[-1]]
        if rng.integers(3) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            others = [r for r in replacements if kind(r) != kind(old)]
            parent[path[-1]] = others[rng.integers(len(others))]
        m = dict(members, **{"header.npy": npy(np.frombuffer(json.dumps(h).encode(), np.uint8))})
        yield f"header {path}", rezip(m)
    m = dict(members, **{"header.npy": npy(np.frombuffer(b"{not json", np.uint8))})
    yield "header not JSON", rezip(m)
    yield "no header", rezip({k: v for k, v in members.items() if k != "header.npy"})
    h = dict(header, format="cnnlab-checkpoint-9")
    yield "format", rezip(dict(members, **{"header.npy": npy(np.frombuffer(json.dumps(h).encode(), np.uint8))}))
    h = json.loads(json.dumps(header))
    h["arrays"]["net/0.weight"]["shape"] = [2 ** 30, 2 ** 30]  # a header claiming a huge array
    yield "huge", rezip(dict(members, **{"header.npy": npy(np.frombuffer(json.dumps(h).encode(), np.uint8))}))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:  # a zip bomb's shape: compressed members
        for name, data in members.items():
            z.writestr(name, data)
    yield "deflated", buffer.getvalue()


def test_fuzzed_checkpoints_load_identically_or_raise_checkpoint_error(saved, tmp_path):
    _, good, original = saved
    rng = np.random.default_rng(20261204)
    path = tmp_path / "fuzz.ckpt"
    fresh = snapshot(build(seed=5))
    counts = {"refused": 0, "loaded": 0}
    for label, data in variants(good, rng):
        path.write_bytes(data)
        trainer = build(seed=5)
        try:
            trainer.load(path)
        except CheckpointError as error:
            assert str(path) in str(error), label
            assert snapshot(trainer) == fresh, f"{label}: a refused file changed the trainer"
            counts["refused"] += 1
        else:
            assert snapshot(trainer) == original, f"{label}: loaded, but not the saved state"
            counts["loaded"] += 1
    assert counts["refused"] > 2000, counts  # the flips that land in zip timestamps may load: identically


def test_another_architecture_is_refused_naming_the_differences_and_changes_nothing(saved):
    path, _, _ = saved
    wide = build(seed=3, hidden=7)
    before = snapshot(wide)
    with pytest.raises(CheckpointError, match=r"another architecture.*0\.weight float32 \(6, 2\) in the file, "
                                              r"float32 \(7, 2\) here"):
        wide.load(path)
    assert snapshot(wide) == before


def test_another_optimizer_is_refused_and_changes_nothing(saved):
    path, _, _ = saved
    sgd = build(seed=3, optimizer=SGD)
    before = snapshot(sgd)
    with pytest.raises(CheckpointError, match="state of a Adam optimizer, this trainer uses SGD"):
        sgd.load(path)
    assert snapshot(sgd) == before


def test_a_diverged_run_never_replaces_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    trainer = build(callbacks=[ModelCheckpoint(path, meta={"run": 1})])
    trainer.fit(epochs=1, progress=False)
    good = path.read_bytes()
    trainer.diverge_above = 1e-9  # the next step counts as divergence ...
    trainer.run(steps=5)  # ... mid-epoch: the epoch never ends
    assert trainer.history.diverged
    # divergence found at an epoch's end (validation outputs not finite): the callbacks still run
    blown = build(callbacks=[ModelCheckpoint(path)], val_scale=np.inf)  # validation outputs not finite
    blown.fit(epochs=1, progress=False)
    assert blown.history.diverged and len(blown.history.epochs) == 1
    assert path.read_bytes() == good
    assert read_checkpoint(path)["meta"] == {"run": 1}


def test_stale_temporaries_of_this_target_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / "run.ckpt"
    stale = [tmp_path / ".run.ckpt.ab_c1234.tmp", tmp_path / ".run.ckpt.zzzzzzzz.tmp"]
    kept = [tmp_path / ".run.ckpt.abc.tmp", tmp_path / ".run.ckpt.ABCDEFGH.tmp", tmp_path / "run.ckpt.abcdefgh.tmp",
            tmp_path / ".other.ckpt.abcdefgh.tmp", tmp_path / ".run.ckpt.abcdefgh.tmp.bak", target]
    for p in stale + kept:
        p.write_bytes(b"x")
    (tmp_path / ".run.ckpt.dirdirdi.tmp").mkdir()  # not a file: kept
    assert sorted(remove_stale_temporaries(target)) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)
    assert remove_stale_temporaries(tmp_path / "nowhere" / "x.ckpt") == []


def test_the_temporary_name_is_what_remove_stale_temporaries_matches(tmp_path, monkeypatch):
    target = tmp_path / "run.ckpt"
    seen = []

    def keep_and_fail(src, dst):  # a write killed just before its rename
        seen.append(src)
        raise KeyboardInterrupt

    monkeypatch.setattr("cnnlab.train.checkpoint.os.replace", keep_and_fail)
    monkeypatch.setattr("cnnlab.train.checkpoint.Path.unlink", lambda self, missing_ok=False: None)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"data")
    monkeypatch.undo()
    assert remove_stale_temporaries(target) == [tmp_path / seen[0].split("/")[-1]]


def test_hyper_parameters_come_from_the_file_even_when_their_type_differs(tmp_path):
    def sgd(momentum):
        return lambda params, lr: SGD(params, lr=lr, momentum=momentum)

    path = tmp_path / "sgd.ckpt"
    with_momentum = build(optimizer=sgd(0.9))
    with_momentum.fit(epochs=1, progress=False)
    with_momentum.save(path)
    plain = build(optimizer=sgd(0)).load(path)  # momentum=0 is an int: 0.9 from the file still fits
    assert plain.optimizer.param_groups[0]["momentum"] == 0.9
    assert snapshot(plain) == snapshot(with_momentum)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_a_repeated_member_is_refused(saved, tmp_path):
    import warnings

    _, good, _ = saved
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        for name, data in [*members.items(), ("net/0.weight.npy", npy(np.zeros((6, 2), np.float32)))]:
            z.writestr(name, data)
    path = tmp_path / "twice.ckpt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="twice.ckpt .*repeated member 'net/0.weight.npy'"):
        build(seed=5).load(path)


def test_an_optimizer_state_missing_for_some_parameters_is_refused(saved, tmp_path):
    _, good, _ = saved
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    del header["arrays"]["optimizer/1/exp_avg"]  # consistently gone from the header and the archive
    del members["optimizer/1/exp_avg.npy"]
    members["header.npy"] = npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    path = tmp_path / "uneven.ckpt"
    path.write_bytes(rezip(members))
    with pytest.raises(CheckpointError, match="uneven.ckpt .*optimizer state covers parameters"):
        build(seed=5).load(path)


def test_a_hyper_parameter_out_of_range_is_refused_before_the_network_changes(saved, tmp_path):
    _, good, _ = saved
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    header["optimizer"]["groups"][0]["eps"] = -1.0  # the right type, a value Adam refuses
    members["header.npy"] = npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    path = tmp_path / "eps.ckpt"
    path.write_bytes(rezip(members))
    trainer = build(seed=5)
    before = snapshot(trainer)
    with pytest.raises(CheckpointError, match=r"eps.ckpt .*eps must be > 0.*got -1.0"):
        trainer.load(path)
    assert snapshot(trainer) == before


# --- callbacks that keep state: EarlyStopping -------------------------------------------------------------
def test_a_resumed_run_stops_early_where_the_uninterrupted_one_does_with_the_same_best_weights(tmp_path):
    whole = build(patience=2, val_scale=1)
    whole.fit(epochs=40, progress=False)
    assert whole.history.status == "early_stopping", "the setting must stop early for this test to mean anything"
    stop_epoch = whole.epoch
    path = tmp_path / "half.ckpt"
    first = build(patience=2)
    first.fit(epochs=stop_epoch - 2, progress=False)  # interrupted two epochs before the stop
    first.save(path)
    resumed = build(seed=9, patience=2).load(path)
    resumed.fit(epochs=40, progress=False)
    assert resumed.history.status == "early_stopping" and resumed.epoch == stop_epoch
    a, b = snapshot(resumed), snapshot(whole)
    for s in (a, b):  # wall-clock seconds per epoch differ between runs; everything else is bit-identical
        for epoch in s["history"]["epochs"]:
            epoch.pop("seconds")
    assert a == b


def test_resuming_with_another_patience_or_without_the_stopper_is_refused_and_changes_nothing(saved):
    path, _, _ = saved
    for other, words in ((build(seed=3, patience=4), r"EarlyStopping state does not fit: patience 5 saved, 4 here"),
                         (build(seed=3, patience=None), r"saved with the callbacks \{'0': 'EarlyStopping'\}, this "
                                                        r"trainer has none that keep state")):
        before = snapshot(other)
        with pytest.raises(CheckpointError, match=words):
            other.load(path)
        assert snapshot(other) == before


def test_forged_stopper_counters_are_refused(saved, tmp_path):
    _, good, _ = saved
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    state = header["callbacks"]["0"]["state"]
    assert state["best_epoch"] + state["wait"] == header["epoch"] == 2
    for change, words in (({"wait": state["wait"] + 1}, "not the counters of a run at epoch 2"),
                          ({"best": "low"}, "not the counters"), ({"best_epoch": None}, "not the counters"),
                          ({"restore_best": False}, "restore_best True saved|restore_best False saved")):
        h = json.loads(json.dumps(header))
        h["callbacks"]["0"]["state"].update(change)
        path = tmp_path / "forged.ckpt"
        path.write_bytes(rezip(dict(members, **{"header.npy": npy(np.frombuffer(json.dumps(h).encode(), np.uint8))})))
        with pytest.raises(CheckpointError, match=words):
            build(seed=3).load(path)


# --- a schedule stepped per optimizer step ----------------------------------------------------------------
def per_step(seed=0, kind="onecycle"):
    """build()'s trainer with a schedule over 6 epochs of 5 steps, stepped after every optimizer step."""
    trainer = build(seed=seed, patience=None)
    opt = trainer.optimizer
    trainer.scheduler = (OneCycleLR(opt, max_lr=0.05, total_steps=30) if kind == "onecycle"
                         else CosineAnnealingLR(opt, T_max=30, warmup_iters=7))
    trainer.scheduler_interval = "step"
    return trainer


def test_a_per_step_schedule_follows_the_steps_by_hand():
    """One-cycle over 30 steps: lr 0.05 / 25 = 0.002 at step 1, the peak 0.05 at step 0.3 * 30 - 1 = 8 (the
    9th), 0.002 / 1e4 at the 30th; Adam's beta1 goes 0.95 -> 0.85 -> 0.95 the other way."""
    trainer = per_step()
    trainer.fit(epochs=6, progress=False)
    lrs = [s["lr"] for s in trainer.history.steps]
    assert len(lrs) == 30 and lrs[0] == pytest.approx(0.002, rel=1e-12) and lrs[8] == pytest.approx(0.05, rel=1e-12)
    assert lrs[29] == pytest.approx(2e-7, rel=1e-9) and max(lrs) == lrs[8]
    assert trainer.scheduler.last_epoch == 30
    # after the 30th step the schedule sits at t = 30, x = (30 - 8) / (29 - 8) in phase 2, as in PyTorch
    beta1 = 0.95 - 0.05 * (1 + math.cos(math.pi * 22 / 21))
    assert trainer.optimizer.param_groups[0]["betas"] == pytest.approx((beta1, 0.999), rel=1e-12)
    with pytest.raises(ValueError, match="scheduler_interval must be 'epoch' or 'step', got 'batch'"):
        build(patience=None, scheduler_interval="batch")


@pytest.mark.parametrize("kind", ["onecycle", "warmup-cosine"])
def test_a_run_with_a_per_step_schedule_resumes_bit_exactly(kind, tmp_path):
    whole = per_step(kind=kind)
    whole.fit(epochs=6, progress=False)
    path = tmp_path / "half.ckpt"
    first = per_step(kind=kind)
    first.fit(epochs=3, progress=False)
    first.save(path)
    resumed = per_step(seed=9, kind=kind).load(path)
    resumed.fit(epochs=6, progress=False)
    a, b = snapshot(resumed), snapshot(whole)
    for s in (a, b):  # wall-clock seconds per epoch differ between runs; everything else is bit-identical
        for epoch in s["history"]["epochs"]:
            epoch.pop("seconds")
    assert a == b and a["scheduler"]["last_epoch"] == 30
