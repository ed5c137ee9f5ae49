"""Writes the Zarr v2/v3 test matrix with zarr-python 3, plus the expected values, for the C++ tests.

usage: write_matrix.py OUT_DIR

OUT_DIR/store is one directory store holding every array (v2 under "v2/", v3 under "v3/");
OUT_DIR/<n>.npy holds array n's values as float32 (C order); OUT_DIR/manifest.json lists
{"path", "npy", "what"}. The matrix crosses codecs x shuffles x dtypes (with big-endian variants)
and varies, array by array, C/F order (v3: transpose), chunk key separators, fill values (NaN
included), chunks left missing, ragged edge chunks and sharding (index at start/end, missing
inner chunks, compressed and checksummed inner chunks).
"""
import json
import os
import sys
import warnings

import numpy as np
import numcodecs
import zarr
import zarr.codecs as zc

warnings.filterwarnings("ignore")

DTYPES = ["u1", "i2", "<i4", "i8", "u2", "f2", "<f4", "<f8", ">i2", ">f4", ">f8", "b1"]


def values(dtype, shape, rng):
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        v = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
        v = rng.integers(lo, hi, n, endpoint=True, dtype=np.int64).astype(dt)
    else:
        v = (rng.standard_normal(n) * 100).astype(dt)
    return v.reshape(shape)


class Matrix:
    def __init__(self, out):
        self.out = out
        self.root = os.path.join(out, "store")
        self.manifest = []
        self.rng = np.random.default_rng(1234)

    def add(self, path, what, shape, dtype, partial, keep=None, **kwargs):
        fill = kwargs.get("fill_value")
        a = zarr.create_array(store=self.root, name=path, shape=shape, dtype=dtype, overwrite=True, **kwargs)
        data = values(dtype, shape, self.rng)
        if partial:  # leave the chunks of the last slab unwritten: they read as the fill value
            k = shape[0] // 2 if keep is None else keep
            a[:k] = data[:k]
            expected = np.empty(shape, dtype=np.float32)
            expected[:k] = data[:k].astype(np.float32)
            expected[k:] = np.float32(a.fill_value if fill is None else fill)
        else:
            a[...] = data
            expected = data.astype(np.float32)
        # zarr-python must agree with what we expect (it is the peer we compare to).
        back = zarr.open_array(store=self.root, path=path, mode="r")[...].astype(np.float32)
        assert np.array_equal(back, expected, equal_nan=True), path
        npy = f"{len(self.manifest)}.npy"
        np.save(os.path.join(self.out, npy), np.ascontiguousarray(expected))
        self.manifest.append({"path": path, "npy": npy, "what": what})

    def save(self):
        with open(os.path.join(self.out, "manifest.json"), "w") as f:
            json.dump(self.manifest, f, indent=1)


def v2_compressors():
    out = []
    for cname in ["lz4", "zstd", "zlib", "blosclz"]:
        for shuffle in [0, 1, 2]:
            out.append((f"blosc-{cname}-s{shuffle}", numcodecs.Blosc(cname=cname, clevel=5, shuffle=shuffle)))
    out += [("zstd", numcodecs.Zstd(level=3)), ("gzip", numcodecs.GZip(level=5)), ("zlib", numcodecs.Zlib(level=5)),
            ("lz4", numcodecs.LZ4()), ("lz4hc", numcodecs.Blosc(cname="lz4hc", clevel=5, shuffle=1)), ("none", None)]
    return out


def v3_compressors():
    shuffles = {0: zc.BloscShuffle.noshuffle, 1: zc.BloscShuffle.shuffle, 2: zc.BloscShuffle.bitshuffle}
    out = []
    for cname in ["lz4", "zstd", "zlib", "blosclz"]:
        for s, shuffle in shuffles.items():
            out.append((f"blosc-{cname}-s{s}", [zc.BloscCodec(cname=cname, clevel=5, shuffle=shuffle)]))
    out += [("zstd", [zc.ZstdCodec(level=3)]), ("zstd-checksum", [zc.ZstdCodec(level=3, checksum=True)]),
            ("gzip", [zc.GzipCodec(level=5)]), ("numcodecs.zlib", [zc.Zlib(level=5)]), ("numcodecs.lz4", [zc.LZ4()]),
            ("crc32c", [zc.Crc32cCodec()]), ("zstd+crc32c", [zc.ZstdCodec(level=1), zc.Crc32cCodec()]), ("none", [])]
    return out


def main():
    m = Matrix(sys.argv[1])
    shape, chunks = (7, 6, 5), (3, 4, 2)  # ragged edge chunks in every dim
    i = 0
    for name, comp in v2_compressors():
        for dtype in DTYPES:
            order = "F" if i % 2 else "C"
            sep = "/" if i % 3 == 0 else "."
            fill = [0, None, "nan", -3][i % 4] if np.dtype(dtype).kind == "f" else [0, 7, None][i % 3]
            fill = float("nan") if fill == "nan" else (True if np.dtype(dtype).kind == "b" and fill else fill)
            m.add(f"v2/{name}/{dtype.replace('<', 'le').replace('>', 'be')}", f"v2 {name} {dtype} order {order} sep {sep} fill {fill}",
                  shape, dtype, partial=i % 3 == 1, chunks=chunks, zarr_format=2, compressors=comp, filters=None, order=order,
                  chunk_key_encoding={"name": "v2", "separator": sep}, fill_value=fill if fill is not None else None)
            i += 1
    for name, comp in v3_compressors():
        for dtype in DTYPES:
            big = dtype.startswith(">")
            dt = dtype.lstrip("<>")
            sep = "." if i % 3 == 0 else "/"
            enc = {"name": "v2", "separator": "."} if i % 7 == 0 else {"name": "default", "separator": sep}
            fill = float("nan") if (np.dtype(dt).kind == "f" and i % 2) else (True if dt == "b1" and i % 2 else 0)
            filters = [zc.TransposeCodec(order=(2, 0, 1))] if i % 4 == 1 else None
            m.add(f"v3/{name}/{dtype.replace('<', 'le').replace('>', 'be')}", f"v3 {name} {dtype} keys {enc} fill {fill}",
                  shape, dt, partial=i % 3 == 1, chunks=chunks, zarr_format=3, compressors=comp, filters=filters,
                  serializer=zc.BytesCodec(endian="big" if big else "little"), chunk_key_encoding=enc, fill_value=fill,
                  dimension_names=["z", "y", "x"])
            i += 1
    # Sharding: index start/end x inner codecs x dtypes, with missing inner chunks and ragged shards.
    inner_codecs = {"raw": [zc.BytesCodec()], "blosc": [zc.BytesCodec(), zc.BloscCodec(cname="zstd", clevel=3)],
                    "gzip-crc": [zc.BytesCodec(), zc.GzipCodec(level=1), zc.Crc32cCodec()],
                    "be-zstd": [zc.BytesCodec(endian="big"), zc.ZstdCodec(level=1)],
                    "transpose": [zc.TransposeCodec(order=(1, 2, 0)), zc.BytesCodec(), zc.Crc32cCodec()]}
    for loc in ["start", "end"]:
        for cname, codecs in inner_codecs.items():
            for dtype in ["u1", "i2", "f4", "f8"]:
                index_codecs = [zc.BytesCodec(), zc.Crc32cCodec()] if i % 2 else [zc.BytesCodec()]
                sharding = zc.ShardingCodec(chunk_shape=(2, 3, 2), codecs=codecs, index_codecs=index_codecs, index_location=loc)
                fill = float("nan") if dtype.startswith("f") and i % 2 else 0
                m.add(f"v3/sharded-{loc}/{cname}/{dtype}", f"v3 sharded index {loc} inner {cname} {dtype} fill {fill}",
                      (9, 7, 5), dtype, partial=i % 2 == 0, keep=2 + i % 3, chunks=(4, 6, 4), zarr_format=3,
                      compressors=None, filters=None,
                      serializer=sharding, fill_value=fill)
                i += 1
    # Nested sharding, and sharding written through create_array's shards= (index at the end).
    nested = zc.ShardingCodec(chunk_shape=(4, 3, 2), codecs=[zc.ShardingCodec(chunk_shape=(2, 3, 1), codecs=[zc.BytesCodec(), zc.GzipCodec()])])
    m.add("v3/sharded-nested/f4", "v3 nested sharding f4", (9, 7, 5), "f4", partial=False, chunks=(8, 6, 4),
          zarr_format=3, compressors=None, filters=None, serializer=nested, fill_value=0)
    m.add("v3/shards-api/i4", "v3 shards= i4", (10, 9, 8), "i4", partial=True, keep=3, chunks=(2, 3, 4), shards=(4, 6, 8),
          zarr_format=3, fill_value=-1)
    # 1-D and 2-D, and an array with a single chunk bigger than the array.
    m.add("v3/1d/f4", "v3 1-D", (11,), "f4", partial=False, chunks=(4,), zarr_format=3, fill_value=0)
    m.add("v2/2d/i2", "v2 2-D", (5, 9), "i2", partial=True, chunks=(2, 4), zarr_format=2, compressors=numcodecs.Zstd(), fill_value=5)
    m.add("v3/bigchunk/f4", "v3 chunk larger than the array", (3, 4, 5), "f4", partial=False, chunks=(8, 8, 8), zarr_format=3,
          fill_value=0)
    m.save()
    print(f"wrote {len(m.manifest)} arrays")


if __name__ == "__main__":
    main()
