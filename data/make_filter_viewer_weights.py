"""Make data/filter_viewer_weights.npz: the reference net that `widgets.filter_viewer()` shows by default.

The net is `cnnlab.models.default_cnn(0)` (Conv2d(1, 8, 5, padding=2)-ReLU-MaxPool2d(2)-Conv2d(8, 16, 3,
padding=1)-ReLU-MaxPool2d(2)-Flatten-Linear(784, 10)) trained by `widgets._training.train_reference_net`:
Adam, lr 1e-3, batch 64, seed 0, on the 8,000 training images of the shipped Fashion-MNIST subset. The file
holds the net's `state_dict()` (float32 arrays keyed "0.weight", "0.bias", ...). The zip entries carry a fixed
date, so the same weights always give the same bytes; the weights themselves depend on the BLAS library's rounding, so
another machine may produce a slightly different file (update the SHA-256 in data/README.md then).

Usage: .venv/bin/python data/make_filter_viewer_weights.py [--epochs 4] [--out data/filter_viewer_weights.npz]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def write_npz(path: Path, arrays: dict) -> None:
    """np.savez without time stamps: the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "filter_viewer_weights.npz")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    from widgets._training import train_reference_net

    start = time.perf_counter()
    net, test_accuracy = train_reference_net(epochs=args.epochs, rng=0)
    write_npz(args.out, net.state_dict())
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.0f} s; accuracy on the subset's "
          f"1,000 test images: {test_accuracy:.1%}")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes), SHA-256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
