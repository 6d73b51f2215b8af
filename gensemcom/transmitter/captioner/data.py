"""Image–caption pairs for fine-tuning the captioner, read from a folder.

The folder holds the images (any layout below it) and one ``captions.jsonl`` file,
one JSON object per line::

    {"image": "people/0001.jpg", "caption": "a man riding a bicycle down a street"}

``image`` is a path relative to the folder; ``caption`` is non-empty text. Other keys
are ignored, blank lines are skipped, and an image may appear on several lines (one
line per caption). The whole file is checked when the dataset is built, so a bad line
fails at once with a ValueError that names the file and line, not halfway through a
training run. Images are decoded only when an item is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

CAPTIONS_FILE = "captions.jsonl"


@dataclass(frozen=True)
class CaptionRecord:
    """One line of captions.jsonl, checked: the image exists and the caption is non-empty."""

    image: Path
    """Absolute path of the image file."""
    caption: str


def read_captions(root: Path) -> list[CaptionRecord]:
    """Parse and check ``root/captions.jsonl``; ValueError names the first bad line."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"caption dataset folder {root} does not exist")
    listing = root / CAPTIONS_FILE
    if not listing.is_file():
        raise ValueError(f"caption dataset {root} has no {CAPTIONS_FILE} (one {{\"image\", \"caption\"}} per line)")
    records = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            records.append(_parse_line(root, line, f"{listing}:{number}"))
    if not records:
        raise ValueError(f"{listing} holds no captions")
    return records


def _parse_line(root: Path, line: str, where: str) -> CaptionRecord:
    """One JSON line → a record; ``where`` ("file:line") starts every error message."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from error
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a JSON object with \"image\" and \"caption\", got {type(entry).__name__}")
    for key in ("image", "caption"):
        if key not in entry:
            raise ValueError(f"{where}: missing \"{key}\"")
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ValueError(f"{where}: \"{key}\" must be a non-empty string, got {entry[key]!r}")
    relative = Path(entry["image"])
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{where}: image path {entry['image']!r} must be relative to {root} and stay inside it")
    image = root / relative
    if not image.is_file():
        raise ValueError(f"{where}: image file {image} not found")
    return CaptionRecord(image=image.resolve(), caption=entry["caption"].strip())


class CaptionDataset:
    """Indexable pairs (RGB image, caption) from a folder with captions.jsonl."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.records = read_captions(self.root)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Image.Image, str]:
        record = self.records[index]
        try:
            with Image.open(record.image) as image:
                return image.convert("RGB"), record.caption
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"cannot decode image {record.image}: {error}") from error
