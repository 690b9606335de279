"""The report of `python -m cnnlab bench`: the result of `cnnlab.bench.run_benchmark` as a plain-text table.

One block of lines per network: the configuration (network, batch, threads and how they were set, the
timing rule, versions, load average before and after); the medians per training step and per inference pass,
cnnlab against PyTorch with their ratio; images per second; per layer, forward and backward (when
measured); a note when the machine was busier than its cores; peak memory; and whether both
libraries ran the same network (the largest logit difference before training).
"""
from __future__ import annotations

__all__ = ["format_report"]


def _fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(result: dict) -> str:
    """The benchmark's result as a plain-text table."""
    cfg, env, thr = result["config"], result["environment"], result["threads"]
    ours, theirs = result["cnnlab"], result["torch"]
    lines = [f"cnnlab benchmark: {cfg['network']}, batch {cfg['batch_size']}, float32, input "
             f"{tuple(cfg['input_shape'])}, {cfg['optimizer']}",
             f"threads: {thr['requested']} (NumPy BLAS: {_fmt(thr['numpy_blas'], 0) if thr['numpy_blas'] else '?'} "
             f"via {thr['numpy_blas_control']}; PyTorch: {thr['torch'] if thr['torch'] is not None else '-'})",
             f"timing: median of {cfg['repeats']} x {cfg['block']} calls after {cfg['warmup']} warm-up calls, "
             "implementations interleaved in blocks",
             f"python {env['python']}, numpy {env['numpy']}, torch {env['torch'] or 'not installed'}, "
             f"{env['cpu_count']} CPUs, load average {_load_text(env['load_average_before'])} before, "
             f"{_load_text(env.get('load_average_after'))} after", ""]
    lines.append(f"{'':34s}{'cnnlab':>12s}{'PyTorch':>12s}{'ratio':>9s}")
    rows = [("training step (ms)", "train_step_ms", "train_step"), ("inference, forward only (ms)", "inference_ms",
                                                                     "inference")]
    for label, key, ratio_key in rows:
        t_ours = ours[key]["median"]
        t_theirs = theirs[key]["median"] if theirs else None
        ratio = result["ratio"][ratio_key] if result["ratio"] else None
        lines.append(f"{label:34s}{_fmt(t_ours):>12s}{_fmt(t_theirs):>12s}{_fmt(ratio):>9s}")
    for label, key in (("training images/s", "train_images_per_s"), ("inference images/s", "inference_images_per_s")):
        lines.append(f"{label:34s}{_fmt(ours[key], 0):>12s}{_fmt(theirs[key] if theirs else None, 0):>12s}")
    if ours["layers"] is not None:
        lines += ["", f"{'per layer, inside training steps (ms)':40s}{'cnnlab fwd':>11s}{'bwd':>8s}"
                      f"{'PyTorch fwd':>13s}{'bwd':>8s}"]
        for i, layer in enumerate(ours["layers"]):
            other = theirs["layers"][i] if theirs and theirs["layers"] else None
            lines.append(f"{i:2d} {_short(layer['layer']):37s}{_fmt(layer['forward_ms']):>11s}"
                         f"{_fmt(layer['backward_ms']):>8s}{_fmt(other['forward_ms'] if other else None):>13s}"
                         f"{_fmt(other['backward_ms'] if other else None):>8s}")
        for label, key in (("loss (forward + backward)", "loss_ms"), ("optimizer step", "optimizer_ms")):
            lines.append(f"   {label:37s}{_fmt(ours[key]):>11s}{'':8s}{_fmt(theirs[key] if theirs else None):>13s}")
        if theirs:
            lines.append("   (PyTorch per layer: autograd run layer by layer, a little slower than its fused step)")
    load, cpus = env["load_average_before"], env["cpu_count"]
    if load and cpus and max(load[0], (env.get("load_average_after") or [0])[0]) > cpus:
        lines += ["", f"note: the machine was busy (load average above its {cpus} CPUs): the times are inflated "
                      "and vary from run to run; the ratio, from interleaved blocks, varies less"]
    mem = result["memory"]
    lines += ["", f"peak memory: {_fmt(mem['numpy_peak_mb'], 1)} MB of NumPy arrays for model, optimizer and a "
                  f"training step (tracemalloc); process peak RSS {_fmt(mem['process_max_rss_mb'], 0)} MB (getrusage)"]
    if theirs:
        lines.append(f"same network: largest |logit difference| cnnlab vs PyTorch before training "
                     f"{result['max_abs_logit_difference']:.1e}")
    else:
        lines.append(f"PyTorch: {result['torch_missing']}")
    return "\n".join(lines)


def _short(layer_repr: str) -> str:
    return layer_repr if len(layer_repr) <= 36 else layer_repr[:33] + "..."


def _load_text(load):
    return "-" if not load else "/".join(f"{v:.1f}" for v in load)
