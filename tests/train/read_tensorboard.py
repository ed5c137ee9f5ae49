"""Reads a run's TensorBoard events with TensorBoard's own EventAccumulator and prints them as JSON:
{"run": {...}, "files": {name: {...}}}, each {"scalars": {tag: [[step, value], ...]},
"images": {tag: [{"step", "width", "height", "decoded": [w, h], "same_as_file"}]}}. "run" is the
whole folder as `tensorboard --logdir` loads it; "files" each events file alone.

usage: read_tensorboard.py RUN_DIR
"""
import io
import json
import pathlib
import sys

from PIL import Image
from tensorboard.backend.event_processing import event_accumulator


def load(path, run_dir):
    acc = event_accumulator.EventAccumulator(
        str(path), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    images = {}
    for tag in tags["images"]:
        images[tag] = []
        for e in acc.Images(tag):
            decoded = Image.open(io.BytesIO(e.encoded_image_string))
            decoded.load()
            preview = run_dir / "images" / f"step-{e.step}.png"
            images[tag].append({"step": e.step, "width": e.width, "height": e.height,
                                "decoded": list(decoded.size),
                                "same_as_file": preview.read_bytes() == e.encoded_image_string})
    return {"scalars": scalars, "images": images}


run_dir = pathlib.Path(sys.argv[1])
files = sorted(p for p in run_dir.iterdir() if "tfevents" in p.name)
print(json.dumps({"run": load(run_dir, run_dir), "files": {p.name: load(p, run_dir) for p in files}}))
