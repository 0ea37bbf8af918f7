"""A folder in the layout of the public "Chest X-Ray Images (Pneumonia)" set, written offline.

No real X-rays exist offline. `write_xray_layout` writes chest_xray/{train,val,test}/{NORMAL,
PNEUMONIA}/*.jpeg with what real downloads hold: the public set's per-patient file names (several
images per patient: `person1_bacteria_1.jpeg`, `person1_virus_6.jpeg`; NORMAL `IM-0115-0001.jpeg`,
`NORMAL2-IM-0427-0001.jpeg`), grey JPEGs of mixed sizes with 1 in 5 RGB, stray .DS_Store files,
a tiny val/ (8 + 8), a 16-bit PNG in train/PNEUMONIA and a truncated JPEG in test/NORMAL.

The pictures come from `source`: the stand-in's silhouettes (exercise 9's grading tests), or
`easy_xrays` (lesson 07's test), on which a frozen Lite0 + linear head makes few mistakes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

import tlcourse as tl

LABELS = ("NORMAL", "PNEUMONIA")
DS_STORE = b"\x00\x00\x00\x01Bud1" + bytes(64)  # what macOS leaves in every folder it opened

# (split, label) -> the grey pictures of that folder, in order
Source = Callable[[str, str], list[Image.Image]]


def standin_source(folder: Path) -> Source:
    """Exercise 9's stand-in as grey pictures: cat and dog silhouettes (train 60 : 180)."""
    standin = tl.grading.write_medical_standin(folder / "standin")

    def pictures(split: str, label: str) -> list[Image.Image]:
        return [
            Image.open(png).convert("L") for png in sorted((standin / split / label).glob("*.png"))
        ]

    return pictures


def easy_xrays(
    counts: dict[str, tuple[int, int]], unmarked: dict[str, int] | None = None, seed: int = 0
) -> Source:
    """Chest-like grey pictures (body, two dark lungs), easy to tell apart: PNEUMONIA lungs hold
    bright round opacities, NORMAL lungs are clear. `counts`: split -> (NORMAL, PNEUMONIA);
    `unmarked`: split -> how many PNEUMONIA pictures have clear lungs all the same (label noise:
    the mistakes a good model still makes)."""
    rng, unmarked = np.random.default_rng(seed), unmarked or {}
    y, x = np.mgrid[0:128, 0:128] / 128.0
    made = {}
    for split, (normal, pneumonia) in counts.items():
        made[split, "NORMAL"] = [_chest(rng, x, y, sick=False) for _ in range(normal)]
        clear = unmarked.get(split, 0)
        made[split, "PNEUMONIA"] = [_chest(rng, x, y, sick=i >= clear) for i in range(pneumonia)]
    return lambda split, label: made[split, label]


def _chest(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, sick: bool) -> Image.Image:
    body = 0.55 + 0.1 * rng.random() - 0.25 * ((x - 0.5) / 0.45) ** 2  # bright at the spine
    picture = body.copy()
    for centre in (0.3, 0.7):  # the lungs: dark ellipses
        cx, cy = centre + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.03)
        lung = ((x - cx) / 0.15) ** 2 + ((y - cy) / 0.3) ** 2 < 1
        picture[lung] = 0.15 + 0.05 * rng.random()
        if sick:  # opacities: bright blobs inside the lung
            for _ in range(int(rng.integers(4, 8))):
                bx, by = cx + rng.normal(0, 0.07), cy + rng.normal(0, 0.15)
                blob = ((x - bx) ** 2 + (y - by) ** 2 < rng.uniform(0.002, 0.005)) & lung
                picture[blob] = 0.9
    picture += rng.normal(0, 0.03, picture.shape)  # film grain
    return Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8), mode="L")


def patient_names(
    label: str, count: int, patient: int, rng: np.random.Generator
) -> tuple[list[str], int]:
    """`count` file names as the public set writes them, 1 to 3 images per patient from number
    `patient` on, sorted; and the next free patient number."""
    names: list[str] = []
    while len(names) < count:
        images = int(rng.integers(1, 4))
        if label == "PNEUMONIA":
            kind = "bacteria" if patient % 3 else "virus"
            start = int(rng.integers(1, 2000))  # the public set numbers images across patients
            names += [f"person{patient}_{kind}_{start + k}.jpeg" for k in range(images)]
        else:
            prefix = "NORMAL2-IM" if patient % 2 else "IM"
            names += [f"{prefix}-{patient:04d}-{k + 1:04d}.jpeg" for k in range(images)]
        patient += 1
    return sorted(names[:count]), patient


def write_xray_layout(folder: Path, source: Source | None = None) -> Path:
    """chest_xray/{train,val,test}/{NORMAL,PNEUMONIA} under `folder`, pictures from `source`
    (default: exercise 9's stand-in). Returns the chest_xray folder.

    File i of a folder gets the i-th of its sorted names, so loaders see the pictures in the
    order `source` gives them. Every split's patients are its own.
    """
    source = source or standin_source(folder)
    root, rng, names_rng = folder / "chest_xray", np.random.default_rng(0), np.random.default_rng(1)
    patient = 1
    for split in ("train", "test"):
        for label in LABELS:
            out = root / split / label
            out.mkdir(parents=True)
            pictures = source(split, label)
            names, patient = patient_names(label, len(pictures), patient, names_rng)
            for i, (picture, name) in enumerate(zip(pictures, names)):
                image = picture.resize((int(rng.integers(40, 90)), int(rng.integers(40, 100))))
                image = image.convert("RGB") if i % 5 == 0 else image
                image.save(out / name, quality=95)
                if split == "train" and i < 8:  # the public set's tiny val/ (8 + 8)
                    (root / "val" / label).mkdir(parents=True, exist_ok=True)
                    image.save(root / "val" / label / name)
            (out / ".DS_Store").write_bytes(DS_STORE)
    (root / ".DS_Store").write_bytes(DS_STORE)
    grey = np.asarray(source("train", "PNEUMONIA")[0].convert("L"))
    sixteen = Image.fromarray(grey.astype(np.uint16) * 257)  # mode I;16
    assert sixteen.mode.startswith("I;16")
    sixteen.save(root / "train" / "PNEUMONIA" / "person_16bit.png")  # sorts after person<N>_...
    first = sorted((root / "test" / "NORMAL").glob("*.jpeg"))[0]
    jpeg = first.read_bytes()
    (root / "test" / "NORMAL" / f"{first.stem}-truncated.jpeg").write_bytes(jpeg[: len(jpeg) // 3])
    return root
