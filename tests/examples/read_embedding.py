"""Reads an `sfm embed` output with zarr-python 3 and xarray; prints what test_cli_embed compares
with sfm's own reading: shape, dims, NaN count, the sum of the finite features (through both
libraries), the inline coordinates and the stride attribute, as one JSON object."""
import json
import sys

import numpy as np
import xarray as xr
import zarr

path = sys.argv[1]
group = zarr.open_group(path, mode="r")
features = group["features"]
values = features[:]
dataset = xr.open_zarr(path, consolidated=False)
through_xarray = dataset["features"].values
print(json.dumps({
    "shape": list(features.shape),
    "dims": list(dataset["features"].dims),
    "nan": int(np.isnan(values).sum()),
    "sum": float(np.nansum(values.astype(np.float64))),
    "xarray_sum": float(np.nansum(through_xarray.astype(np.float64))),
    "inline": [float(v) for v in dataset["inline"].values],
    "stride": features.attrs["sfm_embed"]["stride"],
}))
