"""Reads arrays that sfm wrote with zarr-python 3 and TensorStore and compares them with the values
sfm meant to write.

usage: check_written.py STORE_DIR MANIFEST

MANIFEST is a JSON list of {"path", "npy", "tensorstore": bool}; each "npy" (float32, C order) holds
the expected values. Exits non-zero, printing every mismatch, when any reader disagrees.
"""
import json
import os
import sys
import warnings

import numpy as np
import tensorstore as ts
import zarr

warnings.filterwarnings("ignore")


def main():
    root, manifest_path = sys.argv[1], sys.argv[2]
    with open(manifest_path) as f:
        manifest = json.load(f)
    base = os.path.dirname(manifest_path)
    failures = []
    for entry in manifest:
        path = entry["path"]
        expected = np.load(os.path.join(base, entry["npy"]))
        readers = {"zarr-python": lambda: zarr.open_array(store=root, path=path, mode="r")[...]}
        if entry.get("tensorstore", True):
            driver = "zarr" if os.path.exists(os.path.join(root, path, ".zarray")) else "zarr3"
            spec = {"driver": driver, "kvstore": {"driver": "file", "path": os.path.join(root, path)}}
            readers["tensorstore"] = lambda spec=spec: ts.open(spec, open=True, read=True).result().read().result()
        for name, read in readers.items():
            try:
                got = np.asarray(read()).astype(np.float32)
                if got.shape != expected.shape or not np.array_equal(got, expected, equal_nan=True):
                    failures.append(f"{name}: {path}: values differ (shape {got.shape} vs {expected.shape})")
            except Exception as e:  # noqa: BLE001
                failures.append(f"{name}: {path}: {type(e).__name__}: {e}")
    for line in failures:
        print(line)
    print(f"checked {len(manifest)} arrays, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
