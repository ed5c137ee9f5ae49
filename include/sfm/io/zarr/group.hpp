// Zarr groups and open_node: open whatever lives at a path (array or group, v2 or v3), list a
// group's children from its consolidated metadata (v3 inline consolidated_metadata, v2 .zmetadata)
// or, when there is none, from a store that can list keys (ListableStore). A store that cannot list
// and a group without consolidated metadata give a clear error when asked for children.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/zarr/array.hpp"
#include "sfm/io/zarr/listable.hpp"
#include "sfm/io/zarr/metadata.hpp"

namespace sfm::io::zarr {

// One node's metadata as consolidated metadata gives it.
struct NodeDocument {
  bool is_array = false;
  int zarr_format = 3;
  json doc;                     // v3 zarr.json, or v2 .zarray / .zgroup
  json attrs = json::object();  // v2 .zattrs
};
using Consolidated = std::map<std::string, NodeDocument>;  // path relative to the group → document

class Group;
using Node = std::variant<Array, Group>;

class Group {
 public:
  static Group open(std::shared_ptr<Store> store, const std::string& path, ArrayOptions options = {});

  int zarr_format() const { return zarr_format_; }
  const json& attributes() const { return attributes_; }
  const std::string& path() const { return path_; }
  const std::shared_ptr<Store>& store() const { return store_; }
  bool has_consolidated() const { return consolidated_ != nullptr; }

  // Direct children's names, sorted.
  std::vector<std::string> children() const {
    std::set<std::string> names;
    for (const std::string& p : descendants()) names.insert(p.substr(0, p.find('/')));
    return {names.begin(), names.end()};
  }
  // Paths (relative to this group) of every array below it, sorted.
  std::vector<std::string> array_paths() const {
    std::vector<std::string> out;
    if (consolidated_) {
      for (const auto& [p, d] : *consolidated_)
        if (d.is_array) out.push_back(p);
      return out;
    }
    for (const std::string& p : descendants())
      if (is_array_key_set_.count(p)) out.push_back(p);
    return out;
  }

  // Opens a descendant (relative path), using consolidated metadata when present.
  Node open(const std::string& relative) const;
  Array open_array(const std::string& relative) const {
    Node n = open(relative);
    SFM_CHECK(std::holds_alternative<Array>(n), "'", join_key(path_, relative), "' in ", store_->describe(),
              " is a group, not an array");
    return std::get<Array>(std::move(n));
  }
  Group open_group(const std::string& relative) const {
    Node n = open(relative);
    SFM_CHECK(std::holds_alternative<Group>(n), "'", join_key(path_, relative), "' in ", store_->describe(),
              " is an array, not a group");
    return std::get<Group>(std::move(n));
  }

  Group(std::shared_ptr<Store> store, std::string path, int format, json attributes,
        std::shared_ptr<const Consolidated> consolidated, ArrayOptions options)
      : store_(std::move(store)), path_(normalize_path(std::move(path))), zarr_format_(format),
        attributes_(std::move(attributes)), consolidated_(std::move(consolidated)), options_(options) {}

 private:
  // Every node path below this group.
  std::vector<std::string> descendants() const {
    std::vector<std::string> out;
    if (consolidated_) {
      for (const auto& [p, d] : *consolidated_) out.push_back(p);
      return out;
    }
    const auto* lister = dynamic_cast<const ListableStore*>(store_.get());
    SFM_CHECK(lister != nullptr, "cannot list the children of group '", path_, "' in ", store_->describe(),
              ": the group has no consolidated metadata and the store cannot list keys");
    const std::string prefix = path_.empty() ? "" : path_ + "/";
    std::set<std::string> nodes;
    is_array_key_set_.clear();
    for (const std::string& key : lister->list_prefix(prefix)) {
      const std::string rel = key.substr(prefix.size());
      const size_t slash = rel.rfind('/');
      const std::string leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
      if (slash == std::string::npos) continue;  // this group's own documents
      const std::string node = rel.substr(0, slash);
      if (leaf == "zarr.json" || leaf == ".zgroup") nodes.insert(node);
      if (leaf == ".zarray") { nodes.insert(node); is_array_key_set_.insert(node); }
      if (leaf == "zarr.json" && zarr_format_ == 3) {
        auto bytes = store_->get({key, std::nullopt});
        if (bytes) {
          const json j = json::parse(reinterpret_cast<const char*>(bytes->data()),
                                     reinterpret_cast<const char*>(bytes->data()) + bytes->size(), nullptr, false);
          if (j.is_object() && j.value("node_type", "") == "array") is_array_key_set_.insert(node);
        }
      }
    }
    return {nodes.begin(), nodes.end()};
  }

  std::shared_ptr<Store> store_;
  std::string path_;
  int zarr_format_ = 3;
  json attributes_;
  std::shared_ptr<const Consolidated> consolidated_;
  ArrayOptions options_;
  mutable std::set<std::string> is_array_key_set_;
};

namespace detail {

inline json parse_doc(const Bytes& bytes, const Store& store, const std::string& key) {
  const json j = json::parse(reinterpret_cast<const char*>(bytes.data()), reinterpret_cast<const char*>(bytes.data()) + bytes.size(),
                             nullptr, false);
  SFM_CHECK(!j.is_discarded(), describe_key(store, key), ": invalid JSON");
  return j;
}

// v3 inline consolidated metadata → Consolidated.
inline std::shared_ptr<const Consolidated> consolidated_v3(const json& metadata, const std::string& where) {
  auto c = std::make_shared<Consolidated>();
  for (const auto& [p, doc] : metadata.items()) {
    NodeDocument d;
    d.zarr_format = int_field(doc, "zarr_format", 3, where + " consolidated metadata of '" + p + "'");
    d.is_array = json_field<std::string>(doc, "node_type", "", where + " consolidated metadata of '" + p + "'") == "array";
    d.doc = doc;
    (*c)[normalize_path(p)] = d;
  }
  return c;
}

// v2 .zmetadata → Consolidated (relative to `path`).
inline std::shared_ptr<const Consolidated> consolidated_v2(const json& zmetadata) {
  auto c = std::make_shared<Consolidated>();
  if (!zmetadata.contains("metadata") || !zmetadata["metadata"].is_object()) return c;
  for (const auto& [key, doc] : zmetadata["metadata"].items()) {
    const size_t slash = key.rfind('/');
    const std::string node = slash == std::string::npos ? "" : key.substr(0, slash);
    const std::string leaf = slash == std::string::npos ? key : key.substr(slash + 1);
    if (node.empty()) continue;  // the group itself
    NodeDocument& d = (*c)[node];
    d.zarr_format = 2;
    if (leaf == ".zarray") { d.is_array = true; d.doc = doc; }
    else if (leaf == ".zgroup") d.doc = doc;
    else if (leaf == ".zattrs") d.attrs = doc;
  }
  return c;
}

// The part of `c` below `prefix`, re-keyed relative to it.
inline std::shared_ptr<const Consolidated> sub_consolidated(const Consolidated& c, const std::string& prefix) {
  auto out = std::make_shared<Consolidated>();
  for (const auto& [p, d] : c)
    if (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 && p[prefix.size()] == '/')
      (*out)[p.substr(prefix.size() + 1)] = d;
  return out;
}

}  // namespace detail

// Opens the array or group at `path` ("" = store root). Malformed documents raise sfm::Error.
inline Node open_node(std::shared_ptr<Store> store, const std::string& path, ArrayOptions options = {}) try {
  SFM_CHECK(store != nullptr, "zarr::open_node: null store");
  const std::string p = normalize_path(path);
  const std::vector<StoreRequest> requests{{join_key(p, "zarr.json"), {}}, {join_key(p, ".zarray"), {}},
                                           {join_key(p, ".zgroup"), {}},   {join_key(p, ".zattrs"), {}},
                                           {join_key(p, ".zmetadata"), {}}};
  auto docs = store->get_many(requests);
  SFM_CHECK(docs.size() == requests.size(), store->describe(), ": get_many returned the wrong number of results");
  const auto doc = [&](size_t i) { return detail::parse_doc(*docs[i], *store, requests[i].key); };
  if (docs[0]) {
    const json j = doc(0);
    const std::string where = describe_key(*store, requests[0].key);
    const std::string type = json_field<std::string>(j, "node_type", "", where);
    if (type == "array") return Array(store, p, parse_v3_array(j, where), options);
    SFM_CHECK(type == "group", where, ": unknown node_type '", type, "'");
    GroupMetadata g = parse_v3_group(j, where);
    std::shared_ptr<const Consolidated> c;
    if (g.consolidated) c = detail::consolidated_v3(*g.consolidated, where);
    return Group(store, p, 3, g.attributes, c, options);
  }
  const json attrs = docs[3] ? doc(3) : json::object();
  if (docs[1]) return Array(store, p, parse_v2_array(doc(1), attrs, describe_key(*store, requests[1].key)), options);
  if (docs[2]) {
    std::shared_ptr<const Consolidated> c;
    if (docs[4]) c = detail::consolidated_v2(doc(4));
    return Group(store, p, 2, attrs, c, options);
  }
  fail("no Zarr array or group at '", p, "' in ", store->describe());
} catch (const json::exception& e) {
  fail("malformed Zarr metadata at '", normalize_path(path), "' in ", store ? store->describe() : "a null store", ": ",
       json_error_text(e));
}

inline Group Group::open(std::shared_ptr<Store> store, const std::string& path, ArrayOptions options) {
  Node n = open_node(std::move(store), path, options);
  SFM_CHECK(std::holds_alternative<Group>(n), std::get<Array>(n).describe(), " is an array, not a group");
  return std::get<Group>(std::move(n));
}

inline Node Group::open(const std::string& relative) const try {
  const std::string rel = normalize_path(relative);
  if (rel.empty()) return *this;
  const std::string full = join_key(path_, rel);
  if (consolidated_) {
    auto it = consolidated_->find(rel);
    SFM_CHECK(it != consolidated_->end(), "no node '", rel, "' in the consolidated metadata of group '", path_, "' in ",
              store_->describe());
    const NodeDocument& d = it->second;
    const std::string where = store_->describe() + " consolidated metadata of '" + full + "'";
    if (d.is_array)
      return Array(store_, full, d.zarr_format == 3 ? parse_v3_array(d.doc, where) : parse_v2_array(d.doc, d.attrs, where),
                   options_);
    json attrs = d.zarr_format == 3 && d.doc.is_object() ? d.doc.value("attributes", json::object()) : d.attrs;
    return Group(store_, full, d.zarr_format, attrs, detail::sub_consolidated(*consolidated_, rel), options_);
  }
  return open_node(store_, full, options_);
} catch (const json::exception& e) {
  fail("malformed consolidated metadata of '", join_key(path_, relative), "' in ", store_->describe(), ": ", json_error_text(e));
}

}  // namespace sfm::io::zarr
