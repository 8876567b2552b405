"""Write data/digits-samples/: one held-out digit per class as an 8x8 grayscale PNG (see data/README.md).

The samples are the first of each class among the last 20% of digits.npz, the part specs/digits.yaml
holds out for validation (``validation_split: 0.2`` takes the last ceil(0.2 n) samples, as Keras does).
Pixels are the UCI block counts 0..16 mapped to 0..255: ``round(count * 255 / 16)``. Each file is named
``<label>_<index>.png`` (``index`` in digits.npz). Run from the repository root:

    python data/make_digit_samples.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
VALIDATION_SPLIT = 0.2  # specs/digits.yaml


def main() -> None:
    with np.load(HERE / "digits.npz", allow_pickle=False) as d:
        images, labels = d["images"], d["labels"]
    first_held_out = int(math.ceil(len(labels) * (1.0 - VALIDATION_SPLIT)))
    out = HERE / "digits-samples"
    out.mkdir(exist_ok=True)
    for digit in range(10):
        index = first_held_out + int(np.flatnonzero(labels[first_held_out:] == digit)[0])
        pixels = np.round(images[index, :, :, 0].astype(np.float64) * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).save(out / f"{digit}_{index:04d}.png", optimize=True)


if __name__ == "__main__":
    main()
