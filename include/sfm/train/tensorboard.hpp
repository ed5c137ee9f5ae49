// TensorBoard event files of a training run, written by rank 0 beside metrics.jsonl: the scalars of
// each metrics record (loss, lr, grad_norm, samples_per_s, tokens_per_s, data_wait_s, mask_ratio,
// skipped_steps, data_skips; tag = the metrics.jsonl key, TensorBoard step = the run's step) and the
// reconstruction previews as PNG image summaries (tag "preview"). `tensorboard --logdir runs/` shows them.
//
// Format: a file of TFRecords (uint64 length, masked CRC32C of the length, data, masked CRC32C of
// the data, all little-endian) around protobuf `Event` messages. The few fields needed (Event,
// Summary.Value, Summary.Image, SessionLog) are encoded by hand here: libprotobuf would need protoc
// and TensorFlow's .proto files in the build, and a shared library, for about forty lines of
// varints. The CRC32C is sfm's own (io/zarr/codecs.hpp, the Zarr crc32c codec's, tested against the
// RFC 3720 vectors); no Debian package offers a header-only one.
//
// Resume: every (re)start writes a new file, events.out.tfevents.<unix seconds>.sfm.<n>. A resumed
// run first rewrites the earlier files (atomically) without the events after the checkpoint's step
// — a killed run may have logged steps past its last checkpoint — as ProgressLog drops those
// records from metrics.jsonl, so every reader sees each step once. The new file opens with a
// SessionLog START at the first step the run will log, so a TensorBoard that already loaded the
// orphaned steps purges them too (its EventAccumulator drops every event of a step ≥ a START's).
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sfm/core/error.hpp"
#include "sfm/core/file_io.hpp"
#include "sfm/io/zarr/codecs.hpp"
#include "sfm/train/progress.hpp"

namespace sfm {

namespace tensorboard_detail {

using Bytes = std::vector<std::byte>;

// ---- protobuf wire format: field key = (number << 3) | wire type ----------------------------------
enum WireType : uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

inline void put_varint(Bytes& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(std::byte((v & 0x7f) | 0x80));
  out.push_back(std::byte(v));
}
inline void put_key(Bytes& out, uint32_t field, WireType type) { put_varint(out, uint64_t(field) << 3 | type); }
inline void put_le(Bytes& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(std::byte((v >> (8 * i)) & 0xff));
}
inline void put_varint_field(Bytes& out, uint32_t field, uint64_t v) {
  put_key(out, field, varint);
  put_varint(out, v);
}
inline void put_bytes_field(Bytes& out, uint32_t field, std::span<const std::byte> bytes) {
  put_key(out, field, length_delimited);
  put_varint(out, bytes.size());
  out.insert(out.end(), bytes.begin(), bytes.end());
}
inline void put_string_field(Bytes& out, uint32_t field, std::string_view text) {
  put_bytes_field(out, field, std::as_bytes(std::span(text.data(), text.size())));
}

// Summary.Value {tag = 1, simple_value = 2 (float)} or {tag = 1, image = 4}.
inline Bytes scalar_value(std::string_view tag, float value) {
  Bytes out;
  put_string_field(out, 1, tag);
  put_key(out, 2, fixed32);
  put_le(out, std::bit_cast<uint32_t>(value), 4);
  return out;
}
// Summary.Image {height = 1, width = 2, colorspace = 3 (1: grayscale), encoded_image_string = 4}.
inline Bytes image_value(std::string_view tag, int64_t width, int64_t height, std::span<const std::byte> png) {
  Bytes image;
  put_varint_field(image, 1, uint64_t(height));
  put_varint_field(image, 2, uint64_t(width));
  put_varint_field(image, 3, 1);
  put_bytes_field(image, 4, png);
  Bytes out;
  put_string_field(out, 1, tag);
  put_bytes_field(out, 4, image);
  return out;
}

// Event {wall_time = 1 (double), step = 2, then one of file_version = 3, summary = 5, session_log = 7}
// (6 is the deprecated log_message).
inline Bytes event_head(int64_t step) {
  Bytes out;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  put_key(out, 1, fixed64);
  put_le(out, std::bit_cast<uint64_t>(now), 8);
  put_varint_field(out, 2, uint64_t(step));
  return out;
}

// The step of an encoded Event (0 where it has none); throws on a message that does not parse.
inline int64_t event_step(std::span<const std::byte> event) {
  size_t at = 0;
  auto varint_at = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      SFM_CHECK(at < event.size() && shift < 64, "truncated varint");
      const auto b = uint8_t(event[at++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  int64_t step = 0;
  while (at < event.size()) {
    const uint64_t key = varint_at();
    const auto type = WireType(key & 7);
    if (key >> 3 == 2 && type == varint) step = int64_t(varint_at());
    else if (type == varint) varint_at();
    else if (type == fixed64 || type == fixed32) at += type == fixed64 ? 8 : 4;
    else if (type == length_delimited) at += varint_at();
    else fail("wire type ", uint32_t(type));
    SFM_CHECK(at <= event.size(), "field past the end");
  }
  return step;
}

// ---- TFRecord framing -------------------------------------------------------------------------------
inline uint32_t masked_crc32c(std::span<const std::byte> data) {
  const uint32_t crc = io::zarr::codec::crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

inline Bytes tf_record(std::span<const std::byte> data) {
  Bytes out;
  put_le(out, data.size(), 8);
  put_le(out, masked_crc32c(out), 4);
  out.insert(out.end(), data.begin(), data.end());
  put_le(out, masked_crc32c(data), 4);
  return out;
}

// The events of `file`'s records, in order, up to a torn or corrupt record (a killed run's last).
inline std::vector<Bytes> read_events(const std::filesystem::path& file) {
  const Bytes bytes = read_file(file);
  const std::span<const std::byte> all(bytes);
  auto le = [&](size_t at, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(all[at + size_t(i)]) << (8 * i);
    return v;
  };
  std::vector<Bytes> events;
  for (size_t at = 0; at + 12 <= all.size();) {
    const uint64_t length = le(at, 8);
    if (le(at + 8, 4) != masked_crc32c(all.subspan(at, 8)) || length > all.size() - at - 16) break;
    const auto data = all.subspan(at + 12, length);
    if (le(at + 12 + length, 4) != masked_crc32c(data)) break;
    events.emplace_back(data.begin(), data.end());
    at += 16 + length;
  }
  return events;
}

inline bool is_events_file(const std::filesystem::path& path) {
  return path.filename().string().starts_with("events.out.tfevents.");
}

}  // namespace tensorboard_detail

class TensorBoardLog {
 public:
  // Opens a new events file in `dir`; first drops the events of steps > `keep_through` from the
  // earlier files (0: a new run, whose folder holds none).
  TensorBoardLog(const std::filesystem::path& dir, int64_t keep_through) {
    using namespace tensorboard_detail;
    namespace fs = std::filesystem;
    int64_t earlier = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!is_events_file(entry.path())) continue;
      ++earlier;
      Bytes kept;
      for (const Bytes& event : read_events(entry.path())) {
        int64_t step = 0;
        try {
          step = event_step(event);
        } catch (const Error& e) {
          fail("TensorBoard file ", entry.path().string(), ": an event does not parse (", e.what(), ")");
        }
        if (step > keep_through) continue;
        const Bytes record = tf_record(event);
        kept.insert(kept.end(), record.begin(), record.end());
      }
      const std::span<const std::byte> pieces[] = {kept};
      write_file_atomically(entry.path(), pieces);
    }
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    path_ = dir / ("events.out.tfevents." + std::to_string(seconds.count()) + ".sfm." + std::to_string(earlier));
    out_.open(path_, std::ios::binary | std::ios::trunc);
    SFM_CHECK(out_.good(), "cannot write ", path_.string());
    Bytes version = event_head(0);
    put_string_field(version, 3, "brain.Event:2");
    write(version);
    Bytes start = event_head(keep_through + 1);
    Bytes session_log;
    put_varint_field(session_log, 1, 1);  // SessionLog.status = START
    put_bytes_field(start, 7, session_log);
    write(start);
    out_.flush();
  }

  // One event per metrics record: the scalars of metrics.jsonl at step r.step.
  void report(const StepReport& r) {
    using namespace tensorboard_detail;
    const std::pair<const char*, double> scalars[] = {
        {"loss", r.loss},           {"lr", r.lr},           {"grad_norm", r.grad_norm},
        {"samples_per_s", r.samples_per_s}, {"tokens_per_s", r.tokens_per_s}, {"data_wait_s", r.data_wait_s},
        {"mask_ratio", r.mask_ratio}, {"skipped_steps", double(r.skipped_steps)},
        {"data_skips", double(r.data_skips)}};
    Bytes summary;
    for (const auto& [tag, value] : scalars) put_bytes_field(summary, 1, scalar_value(tag, float(value)));
    emit_summary(r.step, summary);
  }

  // A PNG image (`width` × `height` pixels) at `step`.
  void image(const std::string& tag, int64_t step, int64_t width, int64_t height, std::span<const std::byte> png) {
    using namespace tensorboard_detail;
    Bytes summary;
    put_bytes_field(summary, 1, image_value(tag, width, height, png));
    emit_summary(step, summary);
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  void emit_summary(int64_t step, std::span<const std::byte> summary) {
    tensorboard_detail::Bytes event = tensorboard_detail::event_head(step);
    tensorboard_detail::put_bytes_field(event, 5, summary);
    write(event);
    out_.flush();
    SFM_CHECK(out_.good(), "cannot write ", path_.string());
  }

  void write(std::span<const std::byte> event) {
    const auto record = tensorboard_detail::tf_record(event);
    out_.write(reinterpret_cast<const char*>(record.data()), std::streamsize(record.size()));
  }

  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace sfm
