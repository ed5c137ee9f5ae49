// `sfm synth`: write a synthetic seismic volume (data/synthetic.hpp) as MDIO v1 or a Zarr array.
//
//   sfm synth --out PATH --shape Z,Y,X [--chunks a,b,c] [--format mdio|zarr2|zarr3] [--seed S]
//
// mdio (default): an MDIO v1 dataset (amplitude, inline/crossline/time coordinates, trace_mask),
// chunks 128³ unless given; zarr2/zarr3: one float32 array at PATH's root, chunks 64³ unless given.
// Either way blosc-zstd. PATH is a local path or s3://; one that already holds a Zarr node is
// refused. Prints one JSON line.
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "sfm/core/memory.hpp"
#include "sfm/data/synthetic.hpp"
#include "sfm/io/mdio.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/zarr/writer.hpp"

namespace sfm::cli {

int run_synth(int argc, char** argv) {
  const Args args = parse_args(argc, argv, 2, {"out", "shape", "chunks", "format", "seed"});
  SFM_CHECK(args.positional.empty(), "unexpected argument '", args.positional.empty() ? "" : args.positional[0], "'");
  const std::string out = args.require("out");
  const std::string format = args.get("format", "mdio");
  SFM_CHECK(format == "mdio" || format == "zarr2" || format == "zarr3", "--format must be mdio, zarr2 or zarr3, got '",
            format, "'");
  const std::vector<int64_t> shape = parse_int_list(args.require("shape"), "--shape");
  SFM_CHECK(shape.size() == 3, "--shape needs three extents Z,Y,X, got ", shape.size());
  for (const int64_t e : shape) SFM_CHECK(e > 0, "--shape extents must be positive, got ", args.get("shape"));
  check_fits_in_memory(bytes_of(shape, sizeof(float)), "--shape " + extents_string(shape));
  std::vector<int64_t> chunks(3, format == "mdio" ? 128 : 64);
  if (args.has("chunks")) chunks = parse_int_list(args.get("chunks"), "--chunks");
  SFM_CHECK(chunks.size() == 3, "--chunks needs three extents, got ", chunks.size());
  for (size_t d = 0; d < 3; ++d) {
    SFM_CHECK(chunks[d] > 0, "--chunks extents must be positive, got ", args.get("chunks"));
    chunks[d] = std::min(chunks[d], shape[d]);
  }
  const int64_t seed = parse_int(args.get("seed", "0"), "--seed");
  SFM_CHECK(seed >= 0, "--seed must not be negative, got ", seed);

  std::shared_ptr<io::Store> store = io::open_store(out);
  for (const auto& existing : store->get_many(std::vector<io::StoreRequest>{{"zarr.json"}, {".zarray"}, {".zgroup"}}))
    SFM_CHECK(!existing, out, " already holds a Zarr node; remove it or choose another --out");

  const auto t0 = std::chrono::steady_clock::now();
  SyntheticSeismicConfig config;
  config.shape = {shape[0], shape[1], shape[2]};
  config.seed = uint64_t(seed);
  const std::vector<float> volume = synthesize_seismic(config);
  if (format == "mdio") {
    io::mdio::WriteOptions options;
    options.chunks = chunks;
    io::mdio::write_v1(store, "", shape, volume, options);
  } else {
    io::zarr::WriteOptions options;
    options.zarr_format = format == "zarr2" ? 2 : 3;
    options.chunks = chunks;
    options.dimension_names = {"inline", "crossline", "time"};
    io::zarr::write_array<float>(store, "", shape, volume, options);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s\n", nlohmann::json{{"out", out},
                                     {"format", format},
                                     {"shape", shape},
                                     {"chunks", chunks},
                                     {"seed", seed},
                                     {"variable", format == "mdio" ? "amplitude" : ""},
                                     {"seconds", seconds}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace sfm::cli
