"""Random-box read throughput of the Python Zarr readers on the stores bench_io_read wrote.

Usage: .venv/bin/python benchmarks/io_read_peers.py --dir DIR

Reads DIR/boxes.json and every box from DIR/chunks64 and DIR/chunks128 with zarr-python 3 (its
default codec pipeline), zarr-python with zarrs' Rust codec pipeline (when the zarrs package is
installed) and TensorStore (no cache pool: each read decodes its chunks afresh, as in sfm's run).
One untimed read first, then all boxes in order; prints one JSON object with MB/s of box data
(1 MB = 10^6 bytes; the reads alone are timed, as in bench_io_read) and the same checksum
bench_io_read prints, per implementation and store.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import time

import numpy as np
import tensorstore as ts
import zarr

STORES = ("chunks64", "chunks128")


def timed(read, starts, box):
    read(starts[0], box)
    checksum, seconds = 0.0, 0.0
    for start in starts:
        begin = time.perf_counter()
        values = read(start, box)
        seconds += time.perf_counter() - begin
        checksum += float(values.astype(np.float64).sum())
    return {"mb_per_s": len(starts) * box**3 * 4e-6 / seconds, "seconds": seconds, "checksum": checksum}


def box_slice(start, box):
    return tuple(slice(s, s + box) for s in start)


def zarr_python(path, starts, box):
    array = zarr.open_array(str(path), mode="r")
    return timed(lambda start, b: array[box_slice(start, b)], starts, box)


def tensorstore(path, starts, box):
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}
    array = ts.open(spec, read=True, context=ts.Context({"cache_pool": {"total_bytes_limit": 0}})).result()
    return timed(lambda start, b: array[box_slice(start, b)].read().result(), starts, box)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, type=pathlib.Path)
    args = parser.parse_args()
    boxes = json.loads((args.dir / "boxes.json").read_text())
    starts, box = boxes["starts"], boxes["box"]
    results = {"zarr_python": {}, "tensorstore": {}}
    have_zarrs = importlib.util.find_spec("zarrs") is not None
    if have_zarrs:
        results["zarrs"] = {}
    for name in STORES:
        path = args.dir / name
        results["zarr_python"][name] = zarr_python(path, starts, box)
        if have_zarrs:
            with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
                results["zarrs"][name] = zarr_python(path, starts, box)
        results["tensorstore"][name] = tensorstore(path, starts, box)
    print(json.dumps({"benchmark": "io_read", "cpus": os.cpu_count(), "zarr": zarr.__version__,
                      "tensorstore": importlib.metadata.version("tensorstore"), "zarrs_installed": have_zarrs, "results": results}))


if __name__ == "__main__":
    main()
