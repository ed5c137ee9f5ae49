"""Writes float64 arrays whose values float32 cannot hold, with zarr-python 3, for the C++ test of
Array::read_box_f64.

usage: write_float64.py OUT_DIR
OUT_DIR/store holds v2 (blosc), v3_be (big-endian bytes + gzip) and v3_sharded (shards of 2x2
inner chunks, one inner chunk never written, fill 6.5e6). Values: 6.7e6 + 0.001 * (C-order index),
as C++ computes them in double.
"""
import os
import sys

import numcodecs
import numpy as np
import zarr
import zarr.codecs as zc

out = os.path.join(sys.argv[1], "store")
shape = (7, 9)
values = 6.7e6 + 0.001 * np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
root = zarr.open_group(out, mode="w", zarr_format=3)
v2 = zarr.open_group(os.path.join(out, "v2"), mode="w", zarr_format=2)
a = v2.create_array("a", shape=shape, chunks=(3, 4), dtype="<f8", compressors=numcodecs.Blosc(cname="zstd", shuffle=1))
a[...] = values
b = root.create_array("v3_be", shape=shape, chunks=(4, 4), dtype=">f8", serializer=zc.BytesCodec(endian="big"),
                      compressors=zc.GzipCodec(level=1))
b[...] = values
c = root.create_array("v3_sharded", shape=shape, shards=(4, 6), chunks=(2, 3), dtype="<f8", fill_value=6.5e6)
written = values.copy()
written[0:2, 3:6] = 6.5e6  # left to the fill value: its inner chunk is never written
c[0:2, 0:3] = values[0:2, 0:3]
c[2:, :] = values[2:, :]
c[0:2, 6:] = values[0:2, 6:]
np.save(os.path.join(sys.argv[1], "sharded_expected.npy"), written)
