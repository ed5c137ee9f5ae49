"""Makes MDIO datasets for the C++ MDIO tests, and checks the ones sfm writes.

usage: make_mdio.py make OUT_DIR
  OUT_DIR/survey.sgy   a small post-stack SEG-Y (segyio), inlines 10.., crosslines 20.., one dead trace
  OUT_DIR/v1.mdio      MDIO v1, ingested from it by multidimio (the real MDIO library)
  OUT_DIR/v1z2.mdio    the same dataset in Zarr v2 (every array but the structured headers), as
                       multidimio 1.x lays out v1 when zarr's default format is 2
  OUT_DIR/v0.mdio      an MDIO v0-shaped store (Zarr v2: data/chunked_012, metadata/live_mask)
  OUT_DIR/cube.npy     the traces as segyio reads them, [inline, crossline, sample], NaN where dead
  OUT_DIR/mask.npy     1 where a trace is live
  OUT_DIR/info.json    inline, crossline and sample numbers
usage: make_mdio.py check DATASET EXPECTED_NPY
  opens an sfm-written MDIO dataset with mdio.open_mdio and compares amplitude with the .npy.
"""
import json
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")

NIL, NXL, NS = 6, 9, 40
DEAD = (2, 3)


def make_segy(path):
    import segyio

    spec = segyio.spec()
    spec.format = 5  # IEEE float
    spec.iline, spec.xline = 189, 193
    spec.samples = list(range(NS))
    spec.ilines = list(range(10, 10 + NIL))
    spec.xlines = list(range(20, 20 + NXL))
    spec.sorting = 2
    spec.tracecount = NIL * NXL - 1
    rng = np.random.default_rng(5)
    cube = rng.standard_normal((NIL, NXL, NS)).astype(np.float32)
    mask = np.ones((NIL, NXL), dtype=np.float32)
    mask[DEAD] = 0
    cube[DEAD] = np.nan
    with segyio.create(path, spec) as f:
        t = 0
        for i, il in enumerate(spec.ilines):
            for j, xl in enumerate(spec.xlines):
                if (i, j) == DEAD:
                    continue
                f.header[t] = {segyio.su.iline: il, segyio.su.xline: xl, segyio.su.cdpx: 1000 + 25 * i,
                               segyio.su.cdpy: 2000 + 25 * j, segyio.su.scalco: 1, segyio.su.ns: NS, segyio.su.dt: 4000}
                f.trace[t] = cube[i, j]
                t += 1
        f.bin.update(hns=NS, hdt=4000, format=5)
    # Read back with segyio, independently of how we wrote it.
    back = np.full((NIL, NXL, NS), np.nan, dtype=np.float32)
    with segyio.open(path, ignore_geometry=True) as f:
        for t in range(f.tracecount):
            h = f.header[t]
            back[h[segyio.su.iline] - 10, h[segyio.su.xline] - 20] = f.trace[t]
    assert np.array_equal(back, cube, equal_nan=True)
    return cube, mask, spec


def make_v0(path, cube, mask):
    import numcodecs
    import zarr

    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.attrs.update({"api_version": "0.8.0", "trace_count": int(mask.sum()),
                       "dimension": [{"name": "inline", "coords": list(range(10, 10 + NIL))},
                                     {"name": "crossline", "coords": list(range(20, 20 + NXL))},
                                     {"name": "sample", "coords": list(range(0, 4 * NS, 4))}]})
    data = root.create_group("data")
    meta = root.create_group("metadata")
    blosc = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=1)
    a = data.create_array("chunked_012", shape=cube.shape, chunks=(4, 4, 16), dtype="f4", compressors=blosc, fill_value=0)
    a[...] = np.nan_to_num(cube)
    m = meta.create_array("live_mask", shape=mask.shape, chunks=mask.shape, dtype="bool", compressors=blosc)
    m[...] = mask.astype(bool)
    zarr.consolidate_metadata(path, zarr_format=2)


def make_v1_zarr2(source, path):
    """v1's layout in Zarr v2: root attributes as they are, dims as _ARRAY_DIMENSIONS."""
    import numcodecs
    import zarr

    src = zarr.open_group(source, mode="r")
    dst = zarr.open_group(path, mode="w", zarr_format=2)
    dst.attrs.update(dict(src.attrs))
    blosc = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=1)
    for name, a in src.arrays():
        if a.dtype.names:  # the structured trace headers
            continue
        b = dst.create_array(name, shape=a.shape, chunks=a.chunks, dtype=a.dtype, fill_value=a.fill_value,
                             compressors=blosc)
        b[...] = a[...]
        b.attrs.update({**dict(a.attrs), "_ARRAY_DIMENSIONS": list(a.metadata.dimension_names)})


def make(out):
    import mdio
    from mdio.builder.template_registry import get_template
    from segy.standards import get_segy_standard

    os.makedirs(out, exist_ok=True)
    sgy = os.path.join(out, "survey.sgy")
    cube, mask, spec = make_segy(sgy)
    mdio.segy_to_mdio(get_segy_standard(1.0), get_template("PostStack3DTime"), sgy, os.path.join(out, "v1.mdio"),
                      overwrite=True)
    make_v1_zarr2(os.path.join(out, "v1.mdio"), os.path.join(out, "v1z2.mdio"))
    make_v0(os.path.join(out, "v0.mdio"), cube, mask)
    np.save(os.path.join(out, "cube.npy"), cube)
    np.save(os.path.join(out, "mask.npy"), mask)
    with open(os.path.join(out, "info.json"), "w") as f:
        json.dump({"inline": list(spec.ilines), "crossline": list(spec.xlines), "samples": NS}, f)


def check(dataset, expected_npy):
    import mdio

    ds = mdio.open_mdio(dataset)
    expected = np.load(expected_npy)
    name = ds.attrs["attributes"]["defaultVariableName"]
    got = ds[name].values.astype(np.float32)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert np.array_equal(got, expected, equal_nan=True), "amplitude differs"
    assert tuple(ds[name].dims) == ("inline", "crossline", "time"), ds[name].dims
    assert bool(ds["trace_mask"].values.all())
    print(f"mdio reads {dataset}: {name} {got.shape} OK")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])
