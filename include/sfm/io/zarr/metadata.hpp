// Zarr array and group metadata: parsing Zarr v2 (.zarray/.zgroup/.zattrs/.zmetadata) and v3
// (zarr.json, inline consolidated_metadata) documents into one ArrayMetadata, chunk keys, and
// writing the documents back (for the writer).
//
// What is refused, with an "unsupported: ..." sfm::Error naming it: non-numeric dtypes, v2 filters,
// non-regular chunk grids, unknown chunk key encodings, storage transformers, and v3 metadata fields
// that are not known and not marked "must_understand": false.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/io/zarr/dtype.hpp"

namespace sfm::io::zarr {

// The path of `name` inside a node at `path` ("" is the store root).
inline std::string join_key(const std::string& path, const std::string& name) {
  if (path.empty()) return name;
  if (name.empty()) return path;
  return path + "/" + name;
}

// Strips leading/trailing '/' so that "/a/b/" and "a/b" name the same node.
inline std::string normalize_path(std::string path) {
  while (!path.empty() && path.front() == '/') path.erase(path.begin());
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path;
}

struct ArrayMetadata {
  int zarr_format = 3;
  std::vector<int64_t> shape;
  std::vector<int64_t> grid_chunks;                 // the regular chunk grid: one stored object per cell
  std::optional<std::vector<int64_t>> inner_chunks;  // sharding_indexed's chunk_shape, when sharded
  DataType dtype;
  FillValue fill;
  bool default_key_encoding = true;  // v3 "default" ("c/0/1") vs v2-style ("0.1")
  char separator = '/';
  std::vector<std::string> dimension_names;  // empty, or one per dimension ("" for an unnamed one)
  json attributes = json::object();
  json codecs = json::array();  // v3: the codec list; v2: [] (see order/filters/compressor)
  char order = 'C';             // v2 only
  json filters = nullptr;       // v2 only
  json compressor = nullptr;    // v2 only

  size_t rank() const { return shape.size(); }
  // The decoded chunk a read decodes: inner chunk when sharded, else the grid chunk.
  const std::vector<int64_t>& chunk_shape() const { return inner_chunks ? *inner_chunks : grid_chunks; }
  // Shard shape (the grid chunk) when sharded.
  std::optional<std::vector<int64_t>> shard_shape() const {
    if (inner_chunks) return grid_chunks;
    return std::nullopt;
  }

  // The store key (relative to the array's path) of the grid cell `index`.
  std::string chunk_key(std::span<const int64_t> index) const {
    std::string key = default_key_encoding ? "c" : "";
    if (index.empty()) return default_key_encoding ? "c" : "0";
    for (size_t d = 0; d < index.size(); ++d) {
      if (d > 0 || default_key_encoding) key += separator;
      key += std::to_string(index[d]);
    }
    return key;
  }

  // Codecs as one JSON description (v3: the list; v2: order, filters, compressor).
  json codecs_json() const {
    if (zarr_format == 3) return codecs;
    return json{{"order", std::string(1, order)}, {"filters", filters}, {"compressor", compressor}};
  }

  // The metadata document: .zarray (v2; attributes go to .zattrs) or zarr.json (v3).
  json to_json() const {
    if (zarr_format == 2) {
      json j{{"zarr_format", 2}, {"shape", shape}, {"chunks", grid_chunks}, {"dtype", dtype.v2_name()},
             {"fill_value", fill.to_json(dtype, 2)}, {"order", std::string(1, order)}, {"filters", filters},
             {"compressor", compressor}};
      if (separator != '.') j["dimension_separator"] = std::string(1, separator);
      return j;
    }
    json j{{"zarr_format", 3},
           {"node_type", "array"},
           {"shape", shape},
           {"data_type", dtype.v3_name()},
           {"chunk_grid", {{"name", "regular"}, {"configuration", {{"chunk_shape", grid_chunks}}}}},
           {"chunk_key_encoding",
            {{"name", default_key_encoding ? "default" : "v2"}, {"configuration", {{"separator", std::string(1, separator)}}}}},
           {"fill_value", fill.to_json(dtype, 3)},
           {"codecs", codecs},
           {"attributes", attributes}};
    if (!dimension_names.empty()) {
      json names = json::array();
      for (const std::string& n : dimension_names) names.push_back(n.empty() ? json(nullptr) : json(n));
      j["dimension_names"] = names;
    }
    return j;
  }
};

namespace detail {

// An integer field of a metadata object: `fallback` when absent; otherwise it must be an integer
// that fits T (a float or an out-of-range number is refused, never converted).
template <class T>
T int_field(const json& object, const char* key, T fallback, const std::string& where) {
  if (!object.is_object() || !object.contains(key)) return fallback;
  const json& v = object[key];
  SFM_CHECK(v.is_number_integer(), where, ": '", key, "' must be an integer, got ", v.dump());
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                           : v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                                                 v.get<int64_t>() <= int64_t(std::numeric_limits<T>::max());
  SFM_CHECK(fits, where, ": '", key, "' is out of range: ", v.dump());
  return v.is_number_unsigned() ? T(v.get<uint64_t>()) : T(v.get<int64_t>());
}

inline std::vector<int64_t> parse_extents(const json& value, const char* what, const std::string& where, bool positive) {
  SFM_CHECK(value.is_array(), where, ": '", what, "' must be a list of integers, got ", value.dump());
  std::vector<int64_t> out;
  for (const json& v : value) {
    SFM_CHECK(v.is_number_integer(), where, ": '", what, "' must hold integers, got ", value.dump());
    const int64_t x = v.get<int64_t>();
    SFM_CHECK(positive ? x > 0 : x >= 0, where, ": '", what, "' has an invalid extent ", x);
    out.push_back(x);
  }
  return out;
}

// v3: every field not in `known` must be an object with "must_understand": false.
inline void check_unknown_fields(const json& j, std::initializer_list<const char*> known, const std::string& where) {
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) != known.end()) continue;
    const bool ignorable = value.is_object() && value.contains("must_understand") && value["must_understand"] == false;
    SFM_CHECK(ignorable, "unsupported: Zarr v3 metadata field '", key, "' in ", where,
              " (not understood, and not marked must_understand: false)");
  }
}

// The shard's inner chunk shape, when the array→bytes codec is sharding_indexed.
inline std::optional<std::vector<int64_t>> sharding_inner_chunks(const json& codecs, const std::string& where) {
  for (const json& c : codecs) {
    if (!c.is_object() || json_field<std::string>(c, "name", "", where) != "sharding_indexed") continue;
    SFM_CHECK(c.contains("configuration") && c["configuration"].contains("chunk_shape"), where,
              ": sharding_indexed needs configuration.chunk_shape");
    return parse_extents(c["configuration"]["chunk_shape"], "chunk_shape", where, true);
  }
  return std::nullopt;
}

}  // namespace detail

// Parses .zarray (+ .zattrs, may be null). `where` names the document for errors; a field of the
// wrong JSON type is an sfm::Error too.
inline ArrayMetadata parse_v2_array(const json& j, const json& attrs, const std::string& where) try {
  SFM_CHECK(j.is_object(), where, ": .zarray is not a JSON object");
  SFM_CHECK(detail::int_field(j, "zarr_format", 0, where) == 2, where, ": zarr_format is not 2");
  for (const char* key : {"shape", "chunks", "dtype"}) SFM_CHECK(j.contains(key), where, ": missing '", key, "'");
  ArrayMetadata m;
  m.zarr_format = 2;
  m.shape = detail::parse_extents(j["shape"], "shape", where, false);
  m.grid_chunks = detail::parse_extents(j["chunks"], "chunks", where, true);
  SFM_CHECK(m.shape.size() == m.grid_chunks.size(), where, ": shape has ", m.shape.size(), " dims but chunks ",
            m.grid_chunks.size());
  try {
    m.dtype = parse_v2_dtype(j["dtype"]);
  } catch (const Error& e) {
    fail(e.what(), " in ", where);
  }
  m.fill = parse_fill_value(j.value("fill_value", json(nullptr)), m.dtype, 2);
  const std::string order = json_field<std::string>(j, "order", "C", where);
  SFM_CHECK(order == "C" || order == "F", where, ": order must be \"C\" or \"F\", got \"", order, "\"");
  m.order = order[0];
  m.filters = j.value("filters", json(nullptr));
  if (!m.filters.is_null() && !(m.filters.is_array() && m.filters.empty())) {
    // Byte shuffle is read (it is a pure byte permutation); value-changing filters are not.
    std::string ids;
    bool all_shuffle = m.filters.is_array();
    for (const json& f : m.filters) {
      const std::string id = f.is_object() ? json_field<std::string>(f, "id", "?", where + ": filters") : f.dump();
      all_shuffle = all_shuffle && id == "shuffle";
      if (!ids.empty()) ids += ", ";
      ids += id;
    }
    if (!all_shuffle) fail("unsupported: Zarr v2 filter(s) '", ids, "' in ", where);
  }
  m.compressor = j.value("compressor", json(nullptr));
  const std::string sep = json_field<std::string>(j, "dimension_separator", ".", where);
  SFM_CHECK(sep == "." || sep == "/", where, ": dimension_separator must be \".\" or \"/\", got \"", sep, "\"");
  m.separator = sep[0];
  m.default_key_encoding = false;
  if (attrs.is_object()) {
    m.attributes = attrs;
    // xarray convention for v2: dimension names in the attributes.
    if (attrs.contains("_ARRAY_DIMENSIONS") && attrs["_ARRAY_DIMENSIONS"].is_array() &&
        attrs["_ARRAY_DIMENSIONS"].size() == m.shape.size())
      for (const json& n : attrs["_ARRAY_DIMENSIONS"]) m.dimension_names.push_back(n.is_string() ? n.get<std::string>() : "");
  }
  return m;
} catch (const json::exception& e) {
  fail(where, ": malformed metadata: ", json_error_text(e));
}

// Parses a v3 zarr.json whose node_type is "array".
inline ArrayMetadata parse_v3_array(const json& j, const std::string& where) try {
  SFM_CHECK(j.is_object(), where, ": zarr.json is not a JSON object");
  SFM_CHECK(detail::int_field(j, "zarr_format", 0, where) == 3, where, ": zarr_format is not 3");
  SFM_CHECK(json_field<std::string>(j, "node_type", "", where) == "array", where, ": node_type is not \"array\"");
  detail::check_unknown_fields(j, {"zarr_format", "node_type", "shape", "data_type", "chunk_grid", "chunk_key_encoding",
                                   "fill_value", "codecs", "attributes", "storage_transformers", "dimension_names"},
                               where);
  for (const char* key : {"shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value", "codecs"})
    SFM_CHECK(j.contains(key), where, ": missing '", key, "'");
  ArrayMetadata m;
  m.zarr_format = 3;
  m.shape = detail::parse_extents(j["shape"], "shape", where, false);
  try {
    m.dtype = parse_v3_dtype(j["data_type"]);
  } catch (const Error& e) {
    fail(e.what(), " in ", where);
  }
  const json& grid = j["chunk_grid"];
  SFM_CHECK(json_field<std::string>(grid, "name", "", where + ": chunk_grid") == "regular", "unsupported: chunk_grid ", grid.dump(), " in ",
            where, " (only \"regular\")");
  SFM_CHECK(grid.contains("configuration") && grid["configuration"].contains("chunk_shape"), where,
            ": chunk_grid needs configuration.chunk_shape");
  m.grid_chunks = detail::parse_extents(grid["configuration"]["chunk_shape"], "chunk_shape", where, true);
  SFM_CHECK(m.grid_chunks.size() == m.shape.size(), where, ": shape has ", m.shape.size(), " dims but chunk_shape ",
            m.grid_chunks.size());
  const json& cke = j["chunk_key_encoding"];
  const std::string cke_name = json_field<std::string>(cke, "name", "", where + ": chunk_key_encoding");
  SFM_CHECK(cke_name == "default" || cke_name == "v2", "unsupported: chunk_key_encoding ", cke.dump(), " in ", where);
  m.default_key_encoding = cke_name == "default";
  std::string sep = m.default_key_encoding ? "/" : ".";
  if (cke.contains("configuration"))
    sep = json_field<std::string>(cke["configuration"], "separator", sep, where + ": chunk_key_encoding.configuration");
  SFM_CHECK(sep == "." || sep == "/", where, ": chunk key separator must be \".\" or \"/\", got \"", sep, "\"");
  m.separator = sep[0];
  m.fill = parse_fill_value(j["fill_value"], m.dtype, 3);
  SFM_CHECK(j["codecs"].is_array() && !j["codecs"].empty(), where, ": 'codecs' must be a non-empty list");
  m.codecs = j["codecs"];
  m.inner_chunks = detail::sharding_inner_chunks(m.codecs, where);
  if (m.inner_chunks) {
    SFM_CHECK(m.inner_chunks->size() == m.shape.size(), where, ": sharding chunk_shape has the wrong rank");
    for (size_t d = 0; d < m.shape.size(); ++d)
      SFM_CHECK(m.grid_chunks[d] % (*m.inner_chunks)[d] == 0, where, ": shard shape ", m.grid_chunks[d],
                " is not a multiple of the inner chunk shape ", (*m.inner_chunks)[d], " in dim ", d);
  }
  if (j.contains("storage_transformers")) {
    const json& st = j["storage_transformers"];
    SFM_CHECK(st.is_array() && st.empty(), "unsupported: storage_transformers ", st.dump(), " in ", where);
  }
  if (j.contains("attributes") && j["attributes"].is_object()) m.attributes = j["attributes"];
  if (j.contains("dimension_names") && !j["dimension_names"].is_null()) {
    const json& names = j["dimension_names"];
    SFM_CHECK(names.is_array() && names.size() == m.shape.size(), where, ": dimension_names must list one name per dim");
    for (const json& n : names) m.dimension_names.push_back(n.is_string() ? n.get<std::string>() : "");
  }
  return m;
} catch (const json::exception& e) {
  fail(where, ": malformed metadata: ", json_error_text(e));
}

// A v3 group document: attributes and, when present, the inline consolidated metadata
// (children's zarr.json documents keyed by their path relative to the group).
struct GroupMetadata {
  int zarr_format = 3;
  json attributes = json::object();
  std::optional<json> consolidated;  // path → metadata document (v3 zarr.json or v2 {".zarray": ..})
};

inline GroupMetadata parse_v3_group(const json& j, const std::string& where) try {
  SFM_CHECK(j.is_object() && detail::int_field(j, "zarr_format", 0, where) == 3 &&
                json_field<std::string>(j, "node_type", "", where) == "group", where,
            ": not a Zarr v3 group document");
  detail::check_unknown_fields(j, {"zarr_format", "node_type", "attributes", "consolidated_metadata"}, where);
  GroupMetadata g;
  if (j.contains("attributes") && j["attributes"].is_object()) g.attributes = j["attributes"];
  if (j.contains("consolidated_metadata") && j["consolidated_metadata"].is_object()) {
    const json& cm = j["consolidated_metadata"];
    const std::string kind = json_field<std::string>(cm, "kind", "inline", where + ": consolidated_metadata");
    SFM_CHECK(kind == "inline", "unsupported: consolidated_metadata kind '", kind, "' in ", where);
    if (cm.contains("metadata") && cm["metadata"].is_object()) g.consolidated = cm["metadata"];
  }
  return g;
} catch (const json::exception& e) {
  fail(where, ": malformed metadata: ", json_error_text(e));
}

}  // namespace sfm::io::zarr
