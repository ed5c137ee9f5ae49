"""Reads every array of a Zarr store (v2 or v3) with zarr-python and dumps it for the C++ tests.

usage: dump_arrays.py STORE_DIR OUT_DIR

For each array (found by walking the directory for .zarray / zarr.json files) writes
OUT_DIR/<n>.npy (the values as float32, C order) and lists it in OUT_DIR/manifest.json as
{"path", "npy", "dtype", "numeric", "shape"}; arrays zarr-python itself cannot read are listed
with "error".
"""
import json
import os
import sys

import numpy as np
import zarr


def array_paths(root):
    for dirpath, _dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        if ".zarray" in files:
            yield rel
        elif "zarr.json" in files:
            with open(os.path.join(dirpath, "zarr.json")) as f:
                if json.load(f).get("node_type") == "array":
                    yield rel


def main():
    store, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    manifest = []
    for i, path in enumerate(sorted(array_paths(store))):
        entry = {"path": path}
        try:
            a = zarr.open_array(store=store, path=path, mode="r")
            entry["dtype"] = str(a.dtype)
            entry["shape"] = list(a.shape)
            entry["numeric"] = a.dtype.kind in "biuf"
            if entry["numeric"]:
                values = np.ascontiguousarray(a[...].astype(np.float32))
                entry["npy"] = f"{i}.npy"
                np.save(os.path.join(out, entry["npy"]), values)
        except Exception as e:  # noqa: BLE001 - recorded for the C++ side
            entry["error"] = f"{type(e).__name__}: {e}"
        manifest.append(entry)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
