// MDIO datasets: find the seismic volume inside an MDIO root, and write an MDIO v1-shaped one.
//
// MDIO v1 (Zarr v3, as multidimio 1.x writes it; or the same layout in Zarr v2, as it writes it
// when zarr's default format is 2): a root group whose attributes hold {"apiVersion", "name",
// "attributes": {"defaultVariableName": "amplitude", ...}}, the seismic array (dimension_names or
// _ARRAY_DIMENSIONS inline/crossline/time|depth), 1-D coordinate arrays named after the dims, and
// a boolean `trace_mask` over the trace dims. MDIO v0 (Zarr v2): `data/chunked_012` (one digit
// per dim), `metadata/live_mask`, and root attributes "dimension": [{"name", "coords"}, ...].
#pragma once

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/zarr/group.hpp"
#include "sfm/io/zarr/writer.hpp"

namespace sfm::io::mdio {

using zarr::json;

class Dataset {
 public:
  // Malformed root attributes raise sfm::Error, like every other bad input.
  static Dataset open(std::shared_ptr<Store> store, const std::string& root = "", zarr::ArrayOptions options = {}) try {
    zarr::Node node = zarr::open_node(store, root, options);
    SFM_CHECK(std::holds_alternative<zarr::Group>(node), "not an MDIO dataset: '", root, "' in ", store->describe(),
              " is a Zarr array, not a group");
    Dataset ds{std::get<zarr::Group>(std::move(node))};
    const json& attrs = ds.root_.attributes();
    std::string name;  // v1's default variable, wherever multidimio put it
    const std::string where = "the root attributes of '" + root + "' in " + store->describe();
    if (attrs.contains("attributes"))
      name = json_field<std::string>(attrs["attributes"], "defaultVariableName", "", where + ": 'attributes'");
    if (name.empty()) name = json_field<std::string>(attrs, "defaultVariableName", "", where);
    // The v1 layout: Zarr v3, or Zarr v2 where multidimio 1.x wrote it with zarr's default format 2
    // (apiVersion 1.x and the default variable in the root attributes, dims in _ARRAY_DIMENSIONS).
    const bool v1_in_v2 = ds.root_.zarr_format() == 2 && !name.empty() && attrs.contains("apiVersion");
    if (ds.root_.zarr_format() == 3 || v1_in_v2) {
      ds.version_ = 1;
      SFM_CHECK(!name.empty(), "not an MDIO v1 dataset: the root attributes of '", root, "' in ", store->describe(),
                " have no attributes.defaultVariableName");
      ds.variable_ = name;
      ds.seismic_.emplace(ds.root_.open_array(name));
      ds.dims_ = ds.seismic_->metadata().dimension_names;
      ds.mask_name_ = "trace_mask";
    } else {
      ds.version_ = 0;
      // The seismic array: data/chunked_<0..n-1>; the dims come from the root attributes if present.
      if (attrs.contains("dimension") && attrs["dimension"].is_array())
        for (const json& d : attrs["dimension"]) ds.dims_.push_back(json_field<std::string>(d, "name", "", where + ": 'dimension'"));
      std::vector<std::string> candidates;
      if (!ds.dims_.empty()) {
        std::string digits;
        for (size_t i = 0; i < ds.dims_.size(); ++i) digits += std::to_string(i);
        candidates.push_back("data/chunked_" + digits);
      }
      for (const char* c : {"data/chunked_012", "data/chunked_0123", "data/chunked_01234", "data/chunked_01"})
        candidates.push_back(c);
      for (const std::string& c : candidates) {
        try {
          ds.seismic_.emplace(ds.root_.open_array(c));
          ds.variable_ = c;
          break;
        } catch (const Error&) {
        }
      }
      SFM_CHECK(ds.seismic_.has_value(), "not an MDIO dataset: no data/chunked_012 (or other data/chunked_*) array under '",
                root, "' in ", store->describe());
      if (ds.dims_.size() != ds.seismic_->rank()) ds.dims_ = ds.seismic_->metadata().dimension_names;
      ds.mask_name_ = "metadata/live_mask";
    }
    return ds;
  } catch (const json::exception& e) {
    fail("not an MDIO dataset: malformed root attributes of '", root, "' in ", store->describe(), ": ", json_error_text(e));
  }

  int version() const { return version_; }
  // The seismic variable's path relative to the root ("amplitude", "data/chunked_012").
  const std::string& variable() const { return variable_; }
  const zarr::Array& seismic() const { return *seismic_; }
  const std::vector<std::string>& dimension_names() const { return dims_; }
  const zarr::Group& root() const { return root_; }
  const json& attributes() const { return root_.attributes(); }

  // The live/trace mask over the trace dims (all dims but the last), when the dataset has one.
  std::optional<zarr::Array> trace_mask() const {
    try {
      return root_.open_array(mask_name_);
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  // Coordinate values of a dimension, where cheap: v1 1-D arrays named after the dim; v0 root
  // attribute "dimension"[i].coords. Empty when the dataset does not say.
  std::vector<double> coordinate(const std::string& dim) const {
    std::vector<double> out;
    if (version_ == 0) {
      const json& attrs = root_.attributes();
      if (attrs.contains("dimension") && attrs["dimension"].is_array())
        for (const json& d : attrs["dimension"])
          if (d.is_object() && d.contains("name") && d["name"] == dim && d.contains("coords") && d["coords"].is_array())
            for (const json& c : d["coords"]) out.push_back(c.is_number() ? c.get<double>() : 0.0);
      return out;
    }
    try {
      zarr::Array a = root_.open_array(dim);
      if (a.rank() != 1) return out;
      const std::vector<int64_t> start{0};
      out = a.read_box_f64(start, a.shape());  // float64 coordinates stay exact
    } catch (const Error&) {
    }
    return out;
  }

 private:
  explicit Dataset(zarr::Group root) : root_(std::move(root)) {}
  zarr::Group root_;
  int version_ = 1;
  std::string variable_;
  std::optional<zarr::Array> seismic_;
  std::vector<std::string> dims_;
  std::string mask_name_;
};

struct WriteOptions {
  std::vector<int64_t> chunks{128, 128, 128};  // clipped to the shape
  std::vector<std::string> dims{"inline", "crossline", "time"};
  std::string variable = "amplitude";
  std::string template_name = "PostStack3DTime";
  std::vector<double> origin{1, 1, 0};  // coordinate of index 0 along each dim
  std::vector<double> step{1, 1, 4};    // coordinate increment along each dim
  ThreadPool* pool = nullptr;
};

// Writes an MDIO v1-shaped dataset from a C-order float32 volume [inline, crossline, sample]:
// root group with the MDIO attributes, the amplitude array (bytes + blosc zstd), 1-D int32
// coordinate arrays per dim, and an all-true trace_mask. Returns the amplitude metadata.
inline zarr::ArrayMetadata write_v1(std::shared_ptr<Store> store, const std::string& root, std::span<const int64_t> shape,
                                    std::span<const float> data, const WriteOptions& o = {}) {
  SFM_CHECK(shape.size() >= 2 && o.dims.size() == shape.size() && o.origin.size() == shape.size() &&
                o.step.size() == shape.size() && o.chunks.size() == shape.size(),
            "mdio::write_v1: shape, dims, origin, step and chunks need one entry per dim");
  const std::string path = zarr::normalize_path(root);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  zarr::write_group(*store, path, 3,
                    json{{"apiVersion", "1.1.3"},
                         {"createdOn", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count())},
                         {"name", o.template_name},
                         {"attributes", {{"surveyType", shape.size() == 3 ? "3D" : "2D"}, {"gatherType", "stacked"},
                                         {"defaultVariableName", o.variable}}}});
  zarr::WriteOptions w;
  w.zarr_format = 3;
  for (size_t d = 0; d < shape.size(); ++d) w.chunks.push_back(std::max<int64_t>(1, std::min(o.chunks[d], shape[d])));
  w.fill_value = std::numeric_limits<double>::quiet_NaN();
  w.dimension_names = o.dims;
  w.pool = o.pool;
  const auto meta = zarr::write_array<float>(store, zarr::join_key(path, o.variable), shape, data, w);
  for (size_t d = 0; d < shape.size(); ++d) {
    std::vector<int32_t> coords(static_cast<size_t>(shape[d]));
    for (int64_t i = 0; i < shape[d]; ++i) coords[size_t(i)] = int32_t(o.origin[d] + o.step[d] * double(i));
    zarr::WriteOptions c;
    c.chunks = {shape[d]};
    c.compressor = "zstd";
    c.level = 0;
    c.dimension_names = {o.dims[d]};
    const std::vector<int64_t> s{shape[d]};
    zarr::write_array<int32_t>(store, zarr::join_key(path, o.dims[d]), s, coords, c);
  }
  const std::vector<int64_t> trace_shape(shape.begin(), shape.end() - 1);
  std::vector<uint8_t> mask(size_t(zarr::nd::count(trace_shape)), 1);
  zarr::WriteOptions m;
  for (int64_t e : trace_shape) m.chunks.push_back(std::max<int64_t>(1, std::min<int64_t>(e, 2048)));
  m.blosc_shuffle = 2;
  m.dimension_names = std::vector<std::string>(o.dims.begin(), o.dims.end() - 1);
  zarr::write_array<uint8_t>(store, zarr::join_key(path, "trace_mask"), trace_shape, mask, m, zarr::DataType{zarr::Kind::Bool, 1, false});
  return meta;
}

}  // namespace sfm::io::mdio
