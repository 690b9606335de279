"""Build the class-balanced Fashion-MNIST subset shipped in data/fashion-mnist-subset/.

    .venv/bin/python data/build_subset.py [--source DIR] [--out DIR]

Reads the full set (default: Debian's /usr/share/datasets/fashion-mnist, checked against the known
SHA-256 of its content), draws with a fixed seed the same number of images from every class
(800 per class from train, 100 per class from test), keeps them in their original order and writes
them in the original format (gzip-compressed IDX, same file names) with reproducible gzip headers,
plus SHA256SUMS. If the four files together exceeded 5 MB, train would be reduced in steps of 100
per class, never below 600. Running it again gives byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from cnnlab.data.fashion_mnist import ALL_FILES, CLASSES, FILES, SHA256, SYSTEM_DIR
from cnnlab.data.idx import payload_sha256, read_idx, write_idx

SEED = 20170825  # the day Fashion-MNIST was published
PER_CLASS = {"train": 800, "test": 100}
MIN_TRAIN_PER_CLASS = 600
MAX_TOTAL_BYTES = 5_000_000
SUBDIR = "fashion-mnist-subset"


def select_balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_class` examples of every class, drawn without replacement, sorted.

    Each class is permuted in full and its first `per_class` indices kept, so a smaller subset is
    always a part of a larger one drawn with the same seed.
    """
    chosen = []
    for c in range(len(CLASSES)):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} examples, fewer than the {per_class} asked for")
        chosen.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(chosen))


def write_subset(source: Path, out: Path, per_class: dict) -> list[Path]:
    """Write the four subset files into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset, split in enumerate(("train", "test")):
        image_name, label_name = FILES[split]
        images = read_idx(source / image_name, 3, SHA256["full"][image_name])
        labels = read_idx(source / label_name, 1, SHA256["full"][label_name])
        keep = select_balanced(labels, per_class[split], np.random.default_rng(SEED + offset))
        write_idx(out / image_name, images[keep])
        write_idx(out / label_name, labels[keep])
        paths += [out / image_name, out / label_name]
    return paths


def write_sums(data_dir: Path, paths: list[Path]) -> Path:
    """Write data_dir/SHA256SUMS (format of `sha256sum`, paths relative to data_dir), atomically."""
    lines = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(data_dir).as_posix()}\n"
                    for p in paths)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".SHA256SUMS.", suffix=".part")
    with os.fdopen(fd, "w") as f:
        f.write(lines)
    os.chmod(tmp, 0o644)
    os.replace(tmp, data_dir / "SHA256SUMS")
    return data_dir / "SHA256SUMS"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SYSTEM_DIR, help="directory of the full set")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help=f"data directory; files go to OUT/{SUBDIR} and OUT/SHA256SUMS")
    args = parser.parse_args(argv)
    per_class = dict(PER_CLASS)
    while True:
        paths = write_subset(args.source, args.out / SUBDIR, per_class)
        total = sum(p.stat().st_size for p in paths)
        if total <= MAX_TOTAL_BYTES:
            break
        if per_class["train"] - 100 < MIN_TRAIN_PER_CLASS:
            raise SystemExit(f"the subset takes {total} bytes even with {per_class['train']} train "
                             f"images per class, more than {MAX_TOTAL_BYTES}")
        per_class["train"] -= 100
    write_sums(args.out, paths)
    print(f"{per_class['train']} train and {per_class['test']} test images per class, {total} bytes")
    for p in paths:
        print(f"{p.name}: {p.stat().st_size} bytes")
    print("SHA-256 of the decompressed content (cnnlab.data.fashion_mnist.SHA256['subset']):")
    for name in ALL_FILES:
        print(f'    "{name}": "{payload_sha256(args.out / SUBDIR / name)}",')
    return 0


if __name__ == "__main__":
    sys.exit(main())
