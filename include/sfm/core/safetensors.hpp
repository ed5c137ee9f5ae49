// The safetensors format: sfm's checkpoint format, readable by PyTorch and the HF tools.
//
// Layout: an 8-byte little-endian u64 N, N bytes of JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}},
// then the data region; offsets are relative to its start and the tensors tile it without holes or
// overlaps. The reader holds the whole file in memory and checks every number before use; any
// problem raises sfm::Error naming the file and the tensor or byte offset. The writer stores the
// tensors in the given order behind a space-padded header and replaces the file atomically.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/convert.hpp"
#include "sfm/core/dtype.hpp"
#include "sfm/core/error.hpp"
#include "sfm/core/file_io.hpp"
#include "sfm/core/json_value.hpp"
#include "sfm/core/tensor.hpp"

namespace sfm {

static_assert(std::endian::native == std::endian::little, "sfm's file formats assume a little-endian host");

// The largest JSON header accepted (the limit of the reference implementation).
inline constexpr uint64_t safetensors_max_header = 100'000'000;

class SafetensorsFile {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t file_offset;              // where the tensor's bytes start in the file
    std::span<const std::byte> bytes;  // numel * dtype_size bytes, inside this object's buffer
  };

  static SafetensorsFile load(const std::filesystem::path& path) { return from_bytes(read_file(path), path.string()); }

  // Parses a whole file already in memory; `source` names it in error messages.
  static SafetensorsFile from_bytes(std::vector<std::byte> bytes, std::string source) {
    SafetensorsFile file;
    file.source_ = std::move(source);
    file.buffer_ = std::move(bytes);
    file.parse();
    return file;
  }

  SafetensorsFile(SafetensorsFile&&) = default;  // entries' spans stay valid: the buffer moves with them
  SafetensorsFile& operator=(SafetensorsFile&&) = default;

  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Tensor names in the order of their data in the file.
  std::vector<std::string> names() const {
    std::vector<std::string> result;
    for (const Entry& entry : entries_) result.push_back(entry.name);
    return result;
  }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  const Entry& entry(const std::string& name) const {
    const auto found = index_.find(name);
    SFM_CHECK(found != index_.end(), source_, ": no tensor '", name, "'");
    return entries_[found->second];
  }

  // The tensor's elements converted to T (see convert.hpp for what converts).
  template <class T>
  Tensor<T> tensor_as(const std::string& name) const {
    const Entry& e = entry(name);
    Tensor<T> tensor(e.shape);
    convert_elements(e.dtype, e.bytes, tensor.span(), source_ + ": tensor '" + name + "'");
    return tensor;
  }

 private:
  SafetensorsFile() = default;

  void parse() {
    const uint64_t size = buffer_.size();
    SFM_CHECK(size >= 8, source_, ": ", size, " bytes is too short for a safetensors file (8-byte header length)");
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = header_length << 8 | std::to_integer<uint64_t>(buffer_[i]);
    SFM_CHECK(header_length <= safetensors_max_header, source_, ": header length ", header_length,
              " at byte offset 0 exceeds the limit of ", safetensors_max_header, " bytes");
    SFM_CHECK(header_length <= size - 8, source_, ": header length ", header_length,
              " at byte offset 0 runs past the end of the ", size, "-byte file");
    const char* header = reinterpret_cast<const char*>(buffer_.data()) + 8;
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(header, header + header_length);
    } catch (const nlohmann::json::parse_error& e) {
      fail(source_, ": bad JSON header near byte offset ", 8 + (e.byte > 0 ? e.byte - 1 : 0), ": ", json_error_text(e));
    } catch (const nlohmann::json::exception& e) {
      fail(source_, ": bad JSON header: ", json_error_text(e));
    }
    SFM_CHECK(json.is_object(), source_, ": the JSON header at byte offset 8 is not an object");

    const uint64_t data_start = 8 + header_length, data_size = size - data_start;
    for (const auto& [key, value] : json.items()) {
      if (key == "__metadata__") {
        SFM_CHECK(value.is_object(), source_, ": __metadata__ is not a JSON object");
        for (const auto& [meta_key, meta_value] : value.items()) {
          SFM_CHECK(meta_value.is_string(), source_, ": __metadata__ value of '", meta_key, "' is not a string");
          metadata_[meta_key] = meta_value.get<std::string>();
        }
      } else {
        entries_.push_back(parse_entry(key, value, data_start, data_size));
      }
    }
    check_tiling(data_size, data_start);
    for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;
  }

  Entry parse_entry(const std::string& name, const nlohmann::json& value, uint64_t data_start,
                    uint64_t data_size) const {
    const std::string where = source_ + ": tensor '" + name + "'";
    SFM_CHECK(value.is_object(), where, ": header entry is not a JSON object");
    SFM_CHECK(value.contains("dtype") && value["dtype"].is_string(), where, ": missing or non-string \"dtype\"");
    SFM_CHECK(value.contains("shape") && value["shape"].is_array(), where, ": missing or non-array \"shape\"");
    SFM_CHECK(value.contains("data_offsets") && value["data_offsets"].is_array() &&
                  value["data_offsets"].size() == 2,
              where, ": \"data_offsets\" is not a pair [begin, end]");
    Entry entry;
    entry.name = name;
    try {
      entry.dtype = dtype_from_name(value["dtype"].get<std::string>());
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    for (const nlohmann::json& dim : value["shape"]) {
      SFM_CHECK(dim.is_number_integer(), where, ": shape entry ", dim.dump(), " is not an integer");
      SFM_CHECK(dim.is_number_unsigned() && dim.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()),
                where, ": shape entry ", dim.dump(), " is negative or too large");
      entry.shape.push_back(dim.get<int64_t>());
    }
    uint64_t offsets[2];
    for (int i = 0; i < 2; ++i) {
      const nlohmann::json& offset = value["data_offsets"][i];
      SFM_CHECK(offset.is_number_unsigned(), where, ": data offset ", offset.dump(), " is not a non-negative integer");
      offsets[i] = offset.get<uint64_t>();
    }
    const auto [begin, end] = offsets;
    SFM_CHECK(begin <= end && end <= data_size, where, ": data_offsets [", begin, ", ", end,
              "] lie outside the data region of ", data_size, " bytes at byte offset ", data_start);
    int64_t count = 0;
    try {
      count = numel(entry.shape);
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    const uint64_t itemsize = dtype_size(entry.dtype);
    SFM_CHECK(static_cast<uint64_t>(count) <= (end - begin) / itemsize &&
                  static_cast<uint64_t>(count) * itemsize == end - begin,
              where, ": shape ", shape_string(entry.shape), " of ", dtype_name(entry.dtype), " needs ", count,
              " elements of ", itemsize, " bytes but data_offsets [", begin, ", ", end, "] span ", end - begin);
    entry.file_offset = data_start + begin;
    entry.bytes = std::span<const std::byte>(buffer_).subspan(entry.file_offset, end - begin);
    return entry;
  }

  // Sorts the entries by offset and checks they cover the data region exactly once.
  void check_tiling(uint64_t data_size, uint64_t data_start) {
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return std::pair(a.file_offset, a.bytes.size()) < std::pair(b.file_offset, b.bytes.size());
    });
    uint64_t covered = data_start;  // file offset up to which the data region is accounted for
    const Entry* previous = nullptr;
    for (const Entry& entry : entries_) {
      SFM_CHECK(entry.file_offset >= covered, source_, ": tensor '", entry.name, "' at byte offset ", entry.file_offset,
                " overlaps tensor '", previous ? previous->name : "", "' which ends at byte offset ", covered);
      SFM_CHECK(entry.file_offset == covered, source_, ": bytes ", covered, " to ", entry.file_offset,
                " of the data region belong to no tensor (before tensor '", entry.name, "')");
      covered = entry.file_offset + entry.bytes.size();
      previous = &entry;
    }
    SFM_CHECK(covered == data_start + data_size, source_, ": the tensors end at byte offset ", covered,
              " but the file has ", data_start + data_size, " bytes");
  }

  std::string source_;
  std::vector<std::byte> buffer_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  const void* data;  // numel(shape) * dtype_size(dtype) bytes, native little-endian, C order
};

// Writes the entries, in order, with `metadata` as __metadata__ (omitted when empty), atomically.
inline void write_safetensors(const std::filesystem::path& path, std::span<const SafetensorsEntry> entries,
                              const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::vector<std::span<const std::byte>> pieces(2);  // length and header, then the tensors' bytes
  uint64_t offset = 0;
  for (const SafetensorsEntry& entry : entries) {
    SFM_CHECK(!entry.name.empty() && entry.name != "__metadata__", "write_safetensors ", path,
              ": invalid tensor name '", entry.name, "'");
    SFM_CHECK(names.insert(entry.name).second, "write_safetensors ", path, ": tensor '", entry.name,
              "' appears twice");
    int64_t count = 0;
    try {
      count = numel(entry.shape);
    } catch (const Error& e) {
      fail("write_safetensors ", path, ": tensor '", entry.name, "': ", e.what());
    }
    SFM_CHECK(static_cast<uint64_t>(count) <= std::numeric_limits<uint64_t>::max() / 8, "write_safetensors ", path,
              ": tensor '", entry.name, "' is too large");
    const uint64_t size = static_cast<uint64_t>(count) * dtype_size(entry.dtype);
    SFM_CHECK(entry.data != nullptr || size == 0, "write_safetensors ", path, ": tensor '", entry.name,
              "' has no data");
    header[entry.name] = {{"dtype", dtype_name(entry.dtype)},
                          {"shape", entry.shape},
                          {"data_offsets", {offset, offset + size}}};
    pieces.emplace_back(static_cast<const std::byte*>(entry.data), size);
    offset += size;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("write_safetensors ", path, ": cannot encode the header: ", json_error_text(e));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::byte length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<std::byte>(uint64_t{text.size()} >> (8 * i));
  pieces[0] = length;
  pieces[1] = std::as_bytes(std::span(text));
  write_file_atomically(path, pieces);
}

}  // namespace sfm
