// `sfm zarr info|read`: inspect a Zarr v2/v3 array, group or MDIO dataset, and read a box of it.
//
//   sfm zarr info URL [--array NAME]
//       one JSON object: format, shape, chunks (and shard shape), dtype, codecs, fill value,
//       dimension names and an attributes summary; for a group, the array chosen (--array, else
//       the MDIO seismic variable) and its info, or the group's arrays when it is not MDIO; for
//       MDIO, each dimension coordinate's size, first, last and step.
//   sfm zarr read URL [--array NAME] --start z,y,x --shape a,b,c --out FILE.npy
//       the box as .npy: float64 arrays as float64, any other dtype converted to float32; one
//       JSON line on stdout.
//
// URL is a local path, file://, http(s):// or s3:// (see docs/data.md for the AWS_* variables).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <variant>

#include "cli.hpp"
#include "sfm/core/memory.hpp"
#include "sfm/core/npy.hpp"
#include "sfm/io/mdio.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/zarr/group.hpp"

namespace sfm::cli {

namespace {

using nlohmann::json;
namespace zarr = io::zarr;

// Attributes, one level deep: scalars and small lists or objects of scalars as they are, long
// strings cut, anything bigger described by its size (MDIO roots carry whole SEG-Y headers).
json attributes_summary(const json& attributes) {
  json out = json::object();
  for (const auto& [key, value] : attributes.items()) {
    const bool small = value.is_structured() && value.size() <= 8 &&
                       std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_primitive(); });
    if (value.is_string() && value.get<std::string>().size() > 120)
      out[key] = value.get<std::string>().substr(0, 120) + "...";
    else if (value.is_primitive() || small)
      out[key] = value;
    else if (value.is_object())
      out[key] = "<object of " + std::to_string(value.size()) + " keys>";
    else
      out[key] = "<list of " + std::to_string(value.size()) + " items>";
  }
  return out;
}

json array_info(const zarr::Array& array) {
  const zarr::ArrayMetadata& m = array.metadata();
  json info{{"path", array.path()},
            {"zarr_format", m.zarr_format},
            {"shape", m.shape},
            {"chunks", m.chunk_shape()},
            {"dtype", m.zarr_format == 3 ? m.dtype.v3_name() : m.dtype.v2_name()},
            {"codecs", m.codecs_json()},
            {"fill_value", m.fill.to_json(m.dtype, m.zarr_format)},
            {"dimension_names", m.dimension_names.empty() ? json(nullptr) : json(m.dimension_names)},
            {"attributes", attributes_summary(m.attributes)}};
  if (const auto shard = m.shard_shape()) info["shard_shape"] = *shard;
  return info;
}

// Each dimension coordinate of an MDIO dataset: {size, first, last, step}, step null when the
// values are not evenly spaced (or a dim has no coordinate: then null).
json coordinates_info(const io::mdio::Dataset& dataset) {
  json out = json::object();
  for (const std::string& dim : dataset.dimension_names()) {
    const std::vector<double> c = dataset.coordinate(dim);
    if (c.empty()) {
      out[dim] = nullptr;
      continue;
    }
    const double step = c.size() > 1 ? c[1] - c[0] : 0.0;
    bool even = true;
    for (size_t i = 1; i < c.size(); ++i) even = even && std::abs((c[i] - c[i - 1]) - step) <= 1e-9 * std::max(1.0, std::abs(step));
    out[dim] = {{"size", c.size()}, {"first", c.front()}, {"last", c.back()}, {"step", even ? json(step) : json(nullptr)}};
  }
  return out;
}

// The group's arrays, or null when it has no consolidated metadata and its store cannot list keys.
json listed_arrays(const zarr::Group& group) {
  try {
    return group.array_paths();
  } catch (const Error&) {
    return nullptr;
  }
}

// What a URL (and --array) names: the array to describe or read, and the group around it.
struct Target {
  std::optional<zarr::Group> group;
  std::optional<io::mdio::Dataset> mdio;
  std::optional<zarr::Array> array;  // empty: a group that is not MDIO, without --array
};

Target open_target(const std::string& url, const Args& args) {
  std::shared_ptr<io::Store> store = io::open_store(url);
  zarr::Node node = zarr::open_node(store, "");
  Target t;
  if (auto* array = std::get_if<zarr::Array>(&node)) {
    SFM_CHECK(!args.has("array"), "--array ", args.get("array"), ": ", url, " is an array, not a group");
    t.array.emplace(std::move(*array));
    return t;
  }
  t.group.emplace(std::get<zarr::Group>(std::move(node)));
  try {
    t.mdio.emplace(io::mdio::Dataset::open(store, ""));
  } catch (const Error&) {
    // Not an MDIO dataset: a plain group, read with --array.
  }
  if (args.has("array")) t.array.emplace(t.group->open_array(args.get("array")));
  else if (t.mdio) t.array.emplace(t.mdio->seismic());
  return t;
}

int zarr_info(const std::string& url, const Args& args) {
  const Target t = open_target(url, args);
  json out{{"url", url}};
  if (!t.group) {
    out["node"] = "array";
    out.update(array_info(*t.array));
  } else {
    out["node"] = "group";
    out["zarr_format"] = t.group->zarr_format();
    out["attributes"] = attributes_summary(t.group->attributes());
    if (t.mdio)
      out["mdio"] = {{"version", t.mdio->version()},
                     {"variable", t.mdio->variable()},
                     {"dimension_names", t.mdio->dimension_names()},
                     {"coordinates", coordinates_info(*t.mdio)},
                     {"trace_mask", t.mdio->trace_mask().has_value()}};
    if (t.array) out["array"] = array_info(*t.array);
    else out["arrays"] = listed_arrays(*t.group);
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

int zarr_read(const std::string& url, const Args& args) {
  const std::vector<int64_t> start = parse_int_list(args.require("start"), "--start");
  const std::vector<int64_t> shape = parse_int_list(args.require("shape"), "--shape");
  const std::string out_path = args.require("out");
  const Target t = open_target(url, args);
  SFM_CHECK(t.array.has_value(), url, " is a group that is not an MDIO dataset: name the array with --array (arrays: ",
            listed_arrays(*t.group).dump(), ")");
  const zarr::Array& array = *t.array;
  SFM_CHECK(start.size() == array.rank() && shape.size() == array.rank(), "--start and --shape need ", array.rank(),
            " values for ", array.describe(), ", got ", start.size(), " and ", shape.size());
  for (const int64_t e : shape) SFM_CHECK(e > 0, "--shape extents must be positive, got ", args.get("shape"));
  // float64 stays float64 (northings of ≈6.7e6 lose ≈0.5 m as float32); everything else is float32.
  const zarr::DataType& dtype = array.metadata().dtype;
  const bool f64 = dtype.kind == zarr::Kind::Float && dtype.size == 8;
  check_fits_in_memory(bytes_of(shape, f64 ? 2 * sizeof(double) : sizeof(float)), "the box " + extents_string(shape));
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0;
  const auto timed = [&](const auto& box) {
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_npy(out_path, box.data(), Shape(shape.begin(), shape.end()));
  };
  if (f64) timed(array.read_box_f64(start, shape));
  else timed(array.read_box(start, shape));
  const io::zarr::ReadStats stats = array.stats();
  std::printf("%s\n", json{{"out", out_path},
                           {"array", array.path()},
                           {"start", start},
                           {"shape", shape},
                           {"dtype", f64 ? "float64" : "float32"},
                           {"seconds", seconds},
                           {"requests", stats.requests},
                           {"bytes_fetched", stats.bytes_fetched}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace

int run_zarr(int argc, char** argv) {
  SFM_CHECK(argc >= 3, "expected 'info' or 'read' (sfm zarr info URL | sfm zarr read URL --start ... --shape ... --out ...)");
  const std::string action = argv[2];
  SFM_CHECK(action == "info" || action == "read", "unknown action '", action, "' (expected info or read)");
  const Args args = action == "info" ? parse_args(argc, argv, 3, {"array"})
                                     : parse_args(argc, argv, 3, {"array", "start", "shape", "out"});
  SFM_CHECK(args.positional.size() == 1, "expected one URL, got ", args.positional.size(), " arguments");
  return action == "info" ? zarr_info(args.positional[0], args) : zarr_read(args.positional[0], args);
}

}  // namespace sfm::cli
