// ListableStore: the optional capability of a Store to list its keys, which Zarr groups use to
// find their children when they have no consolidated metadata. A Store class that can list cheaply
// (local files, memory) also derives from it; group code discovers it with dynamic_cast.
#pragma once

#include <string>
#include <vector>

namespace sfm::io::zarr {

class ListableStore {
 public:
  virtual ~ListableStore() = default;
  // Every key that starts with `prefix` ("" = all keys), recursively, sorted.
  virtual std::vector<std::string> list_prefix(const std::string& prefix) const = 0;
};

}  // namespace sfm::io::zarr
