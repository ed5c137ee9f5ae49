// Where `sfm embed` writes: a Zarr v3 group on the local file system holding
//   features        float32 [gz, gy, gx, D], chunks [slab depth, window cells y, window cells x, D],
//                   fill NaN, dimension_names (the survey's three dims, "feature")
//   <dim> × 3       float64 [g]: each cell's coordinate along the survey's dim, the centre of its
//                   patch (MDIO: the dataset's dimension coordinates; a plain array: voxel indices)
// and, in the group's and the array's attributes, "sfm_embed": the job (checkpoint and its CRC32C,
// data, variable, model, stride, normalisation, precision). xarray opens it as a dataset with
// coordinates.
//
// The job is the output's identity: an existing group with the same job is resumed (the slabs whose
// chunks are all present are kept: chunk writes are atomic, slabs are written in order); anything
// else that exists is refused unless the caller asked to overwrite it.
#pragma once

#include <array>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/infer/windows.hpp"
#include "sfm/io/mdio.hpp"
#include "sfm/io/open_store.hpp"
#include "sfm/io/store_file.hpp"
#include "sfm/io/zarr/group.hpp"
#include "sfm/io/zarr/writer.hpp"

namespace sfm {

// The survey's dims and each voxel's coordinate along them.
struct SurveyAxes {
  std::array<std::string, 3> names{"z", "y", "x"};
  std::array<std::vector<double>, 3> coordinates;  // [shape[i]] per dim
};

namespace embed_output_detail {

// A group's 1-D array `name` of `length` values, when it has one.
inline std::vector<double> coordinate_array(const io::zarr::Group& group, const std::string& name, int64_t length) {
  try {
    const io::zarr::Array a = group.open_array(name);
    if (a.rank() == 1 && a.shape()[0] == length) return a.read_box_f64(std::vector<int64_t>{0}, a.shape());
  } catch (const Error&) {
  }
  return {};
}

}  // namespace embed_output_detail

// The axes of the volume `open_volume(url, variable)` reads: MDIO dims and dimension coordinates,
// an array's dimension_names (coordinates from same-named 1-D arrays beside it), or z, y, x and
// voxel indices.
inline SurveyAxes survey_axes(const std::string& url, const std::string& variable, const Box3& shape) {
  SurveyAxes axes;
  const std::shared_ptr<io::Store> store = io::open_store(url);
  const io::zarr::Node node = io::zarr::open_node(store, "");
  std::vector<std::string> names;
  if (const auto* array = std::get_if<io::zarr::Array>(&node)) {
    names = array->metadata().dimension_names;
  } else if (!variable.empty()) {
    const auto& group = std::get<io::zarr::Group>(node);
    names = group.open_array(variable).metadata().dimension_names;
    if (names.size() == 3)
      for (size_t i = 0; i < 3; ++i) axes.coordinates[i] = embed_output_detail::coordinate_array(group, names[i], shape[i]);
  } else {
    const auto dataset = io::mdio::Dataset::open(store, "");
    names = dataset.dimension_names();
    if (names.size() == 3)
      for (size_t i = 0; i < 3; ++i) axes.coordinates[i] = dataset.coordinate(names[i]);
  }
  for (size_t i = 0; i < 3; ++i) {
    if (names.size() == 3 && !names[i].empty()) axes.names[i] = names[i];
    if (int64_t(axes.coordinates[i].size()) != shape[i]) {
      axes.coordinates[i].resize(size_t(shape[i]));
      for (int64_t v = 0; v < shape[i]; ++v) axes.coordinates[i][size_t(v)] = double(v);
    }
  }
  return axes;
}

class EmbeddingOutput {
 public:
  // Opens `dir` for `job` over `plan` with `dim` features: resumes the same job, creates a new
  // output where there is none (or an empty directory), replaces anything else only when
  // `overwrite`, and otherwise refuses with one line saying what is there.
  EmbeddingOutput(const std::filesystem::path& dir, const WindowPlan& plan, int64_t dim, const nlohmann::json& job,
                  const SurveyAxes& axes, bool overwrite)
      : dir_(dir), plan_(plan), dim_(dim) {
    namespace fs = std::filesystem;
    const std::string shown = dir.string();
    if (fs::exists(dir) && !(fs::is_directory(dir) && fs::is_empty(dir))) {
      const nlohmann::json existing = existing_job(dir);
      if (existing == job) {
        resumed_ = true;
      } else if (!overwrite) {
        fail("--out ", shown, " ", existing.is_null() ? std::string("exists and is not an sfm embed output")
                                                      : "holds an embedding of other inputs (" + first_difference(existing, job) + ")",
             "; pass --overwrite to replace it");
      } else {
        fs::remove_all(dir);
      }
    }
    const std::vector<int64_t> shape{plan.grid[0], plan.grid[1], plan.grid[2], dim};
    const Box3 w = plan.window_grid();
    io::zarr::WriteOptions o;
    o.chunks = {plan.slab_depth(), w[1], w[2], dim};
    o.fill_value = std::numeric_limits<double>::quiet_NaN();
    o.dimension_names = {axes.names[0], axes.names[1], axes.names[2], "feature"};
    o.attributes = {{"sfm_embed", job}};
    const auto store = std::make_shared<io::FileStore>(dir);
    if (!resumed_) {
      io::zarr::write_group(*store, "", 3, {{"sfm_embed", job}});
      for (size_t i = 0; i < 3; ++i) write_coordinate(store, axes, i);
    }
    // The same metadata again on a resume: rewriting it changes nothing.
    features_.emplace(io::zarr::ArrayWriter::create(store, "features", shape, io::zarr::data_type_of<float>(), o));
  }

  bool resumed() const { return resumed_; }

  // The first slab not wholly on disk (slabs() when all are).
  int64_t first_missing_slab() const {
    const auto& m = features_->metadata();
    const std::vector<int64_t>& g = m.grid_chunks;
    const int64_t ny = (plan_.grid[1] + g[1] - 1) / g[1], nx = (plan_.grid[2] + g[2] - 1) / g[2];
    for (int64_t k = 0; k < plan_.slabs(); ++k)
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i)
          if (!std::filesystem::exists(dir_ / "features" / m.chunk_key(std::vector<int64_t>{k, j, i, 0}))) return k;
    return plan_.slabs();
  }

  // Writes slab k: features [depth, gy, gx, D] of planes [k·depth, …).
  void write_slab(int64_t k, std::span<const float> features) {
    const int64_t z0 = k * plan_.slab_depth(), depth = std::min(plan_.slab_depth(), plan_.grid[0] - z0);
    const std::vector<int64_t> start{z0, 0, 0, 0}, shape{depth, plan_.grid[1], plan_.grid[2], dim_};
    features_->write_box<float>(start, shape, features);
  }

 private:
  // The "sfm_embed" job of an existing output group; null when `dir` is something else.
  static nlohmann::json existing_job(const std::filesystem::path& dir) {
    std::ifstream in(dir / "zarr.json");
    if (!in) return nullptr;
    const nlohmann::json group = nlohmann::json::parse(in, nullptr, false);
    if (!group.is_object() || !group.contains("attributes") || !group["attributes"].is_object()) return nullptr;
    return group["attributes"].value("sfm_embed", nlohmann::json());
  }

  // "KEY: was A, now B" for the first top-level key of the jobs that differs.
  static std::string first_difference(const nlohmann::json& was, const nlohmann::json& now) {
    for (const auto& [key, value] : now.items()) {
      const nlohmann::json before = was.is_object() ? was.value(key, nlohmann::json()) : nlohmann::json();
      if (before != value) return key + ": was " + before.dump() + ", now " + value.dump();
    }
    return "other keys";
  }

  // Cell coordinates along dim i: the mean of the first and last voxel's coordinate of each patch.
  void write_coordinate(const std::shared_ptr<io::Store>& store, const SurveyAxes& axes, size_t i) const {
    const int64_t p = plan_.patch[i];
    std::vector<double> cells(size_t(plan_.grid[i]));
    for (int64_t c = 0; c < plan_.grid[i]; ++c)
      cells[size_t(c)] = 0.5 * (axes.coordinates[i][size_t(c * p)] + axes.coordinates[i][size_t(c * p + p - 1)]);
    io::zarr::WriteOptions o;
    o.chunks = {plan_.grid[i]};
    o.compressor = "zstd";
    o.dimension_names = {axes.names[i]};
    const std::vector<int64_t> shape{plan_.grid[i]};
    io::zarr::ArrayWriter::create(store, axes.names[i], shape,
                                  io::zarr::data_type_of<double>(), o)
        .write_box<double>(std::vector<int64_t>{0}, shape, cells);
  }

  std::filesystem::path dir_;
  WindowPlan plan_;
  int64_t dim_;
  bool resumed_ = false;
  std::optional<io::zarr::ArrayWriter> features_;
};

}  // namespace sfm
