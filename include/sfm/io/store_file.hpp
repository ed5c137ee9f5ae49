// FileStore: a Store over a local directory.
//
// Reads use pread on the key's file (whole values, ranges and suffix ranges); writes go to a
// temporary file in the same directory that is then renamed over the key, so a reader never sees
// a half-written value (no fsync: a crash may lose the newest values, never corrupt older ones).
// Keys are checked (store_key.hpp) before they touch the file system, so none escapes the root;
// symbolic links placed inside the root by its owner are followed. get_many reads on a few
// threads, which keeps several requests in flight on NVMe and network file systems; get_each reads
// on the caller's pool into reused buffers and hands each value on at once (get_chained: the reads a
// value's sink asks for follow on the same thread). It lists
// keys (zarr::ListableStore) so that groups without consolidated metadata find their children.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <string>
#include <filesystem>
#include <system_error>
#include <thread>
#include <utility>

#include "sfm/core/error.hpp"
#include "sfm/io/buffer_pool.hpp"
#include "sfm/io/store.hpp"
#include "sfm/io/store_key.hpp"
#include "sfm/io/zarr/listable.hpp"

namespace sfm::io {

class FileStore final : public Store, public zarr::ListableStore {
 public:
  // Threads that get_many reads on, at most.
  static constexpr size_t kReadThreads = 8;

  explicit FileStore(std::filesystem::path root) : root_(std::filesystem::absolute(root)) {}

  std::optional<Bytes> get(const StoreRequest& request) override {
    Bytes value;
    if (!read(request, [&](size_t size) {
          value.resize(size);
          return value.data();
        }))
      return std::nullopt;
    return value;
  }

  std::vector<std::optional<Bytes>> get_many(std::span<const StoreRequest> requests) override {
    std::vector<std::optional<Bytes>> results(requests.size());
    std::vector<std::exception_ptr> errors(requests.size());
    std::atomic<size_t> next{0};
    const auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < requests.size();) {
        try {
          results[i] = get(requests[i]);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    };
    {
      std::vector<std::jthread> helpers;
      const size_t threads = std::min(kReadThreads, requests.size());
      for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
      work();
    }
    for (const std::exception_ptr& error : errors)
      if (error) std::rethrow_exception(error);
    return results;
  }

  // Reads on `pool` into pooled buffers (no zeroing, no fresh pages per value) and runs each sink
  // right after its read, on the same thread, while the bytes are still in cache.
  void get_each(std::span<const StoreRequest> requests, ThreadPool& pool, const ValueSink& sink) override {
    pool.parallel_for(requests.size(), [&](size_t i) { read_into_sink(requests[i], [&](auto value) { sink(i, value); }); });
  }

  // The same, and the reads a sink asks for run right after it, on its thread.
  void get_chained(std::span<const StoreRequest> requests, ThreadPool& pool, const ChainedSink& sink) override {
    pool.parallel_for(requests.size(), [&](size_t i) {
      std::vector<std::pair<StoreRequest, size_t>> todo{{requests[i], i}};
      const ReadMore more = [&](StoreRequest request, size_t tag) { todo.emplace_back(std::move(request), tag); };
      for (size_t k = 0; k < todo.size(); ++k) {
        const StoreRequest request = todo[k].first;
        const size_t tag = todo[k].second;  // not a structured binding: the lambda captures it (clang 14)
        read_into_sink(request, [&](auto value) { sink(tag, value, more); });
      }
    });
  }

  void set(const std::string& key, std::span<const std::byte> value) override {
    const std::filesystem::path path = path_of(key);
    std::error_code error;
    std::filesystem::create_directories(path.parent_path(), error);
    SFM_CHECK(!error, describe(), ": key '", key, "': cannot create directory ",
              path.parent_path(), ": ", error.message());
    static std::atomic<uint64_t> counter{0};
    std::filesystem::path temp = path;
    temp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) fail_errno("cannot create temporary file for", key);
    try {
      FileDescriptor file{fd};
      size_t done = 0;
      while (done < value.size()) {
        const ssize_t put = ::write(fd, value.data() + done, value.size() - done);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) fail_errno("cannot write", key);
        done += static_cast<size_t>(put);
      }
      if (file.close() != 0) fail_errno("cannot write", key);
      if (::rename(temp.c_str(), path.c_str()) != 0) fail_errno("cannot rename temporary file to", key);
    } catch (...) {
      ::unlink(temp.c_str());
      throw;
    }
  }

  // Keys of the files under the root that start with `prefix`, sorted; temporary files of
  // unfinished writes are left out.
  std::vector<std::string> list_prefix(const std::string& prefix) const override {
    namespace fs = std::filesystem;
    const size_t slash = prefix.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : prefix.substr(0, slash);
    if (!dir.empty()) check_key(describe(), dir);
    std::vector<std::string> keys;
    std::error_code error;
    fs::recursive_directory_iterator it(dir.empty() ? root_ : root_ / dir, fs::directory_options::follow_directory_symlink,
                                        error);
    if (error == std::errc::no_such_file_or_directory || error == std::errc::not_a_directory) return keys;
    for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
      std::error_code ignored;
      if (!it->is_regular_file(ignored)) continue;
      std::string key = it->path().lexically_relative(root_).generic_string();
      if (key.starts_with(prefix) && key.find(".tmp-") == std::string::npos) keys.push_back(std::move(key));
    }
    SFM_CHECK(!error, describe(), ": cannot list keys under '", prefix, "': ", error.message());
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  std::string describe() const override { return "file://" + root_.string(); }

  const std::filesystem::path& root() const { return root_; }

 private:
  // Closes its descriptor once, on close() or destruction.
  class FileDescriptor {
   public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() { close(); }
    int close() {
      const int fd = std::exchange(fd_, -1);
      return fd >= 0 ? ::close(fd) : 0;
    }

   private:
    int fd_;
  };

  // Reads `request` into a pooled buffer and hands it to `sink` (std::nullopt: no such key).
  template <class Sink>
  void read_into_sink(const StoreRequest& request, Sink&& sink) const {
    BufferPool::Buffer buffer;
    const bool found = read(request, [&](size_t size) {
      buffer = BufferPool::shared().get(size);
      return buffer.bytes().data();
    });
    sink(found ? std::optional<std::span<const std::byte>>(buffer.bytes()) : std::nullopt);
  }

  // Reads the value (or range) of `request` into the memory `allocate(size)` returns; false when
  // the key does not exist.
  template <class Allocate>
  bool read(const StoreRequest& request, Allocate&& allocate) const {
    const std::filesystem::path path = path_of(request.key);
    if (request.range) check_range(describe(), request.key, *request.range);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return false;
      fail_errno("cannot open", request.key);
    }
    FileDescriptor file{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0) fail_errno("cannot stat", request.key);
    if (S_ISDIR(info.st_mode)) return false;  // a directory holds keys; it is not a value
    const auto [begin, end] =
        request.range ? resolve_range(describe(), request.key, *request.range, info.st_size)
                      : std::pair<int64_t, int64_t>{0, info.st_size};
    const size_t size = static_cast<size_t>(end - begin);
    std::byte* data = allocate(size);
    size_t done = 0;
    while (done < size) {
      const ssize_t got = ::pread(fd, data + done, size - done, static_cast<off_t>(begin + static_cast<int64_t>(done)));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail_errno("cannot read", request.key);
      SFM_CHECK(got > 0, describe(), ": key '", request.key, "': file shrank while being read (got ", done, " of ",
                size, " bytes at offset ", begin, ")");
      done += static_cast<size_t>(got);
    }
    return true;
  }

  std::filesystem::path path_of(const std::string& key) const {
    check_key(describe(), key);
    return root_ / key;
  }

  [[noreturn]] void fail_errno(const char* what, const std::string& key) const {
    const std::string reason = std::generic_category().message(errno);
    fail(describe(), ": ", what, " key '", key, "' (", (root_ / key).string(), "): ", reason);
  }

  std::filesystem::path root_;
};

}  // namespace sfm::io
