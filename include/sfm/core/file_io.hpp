// Whole-file reads and crash-safe whole-file writes (POSIX).
//
// Checkpoints and arrays are written to `<path>.tmp-<pid>` in the same directory, fsync'ed, then
// renamed over `path` (and the directory fsync'ed), so an interrupted write leaves the previous
// file intact and a reader never sees half a file. Failures raise sfm::Error naming the path.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "sfm/core/error.hpp"

namespace sfm {

namespace detail {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports the result (close can report a deferred write error).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

inline std::string errno_text() { return std::strerror(errno); }

inline void write_all(int fd, std::span<const std::byte> bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    SFM_CHECK(written > 0, "cannot write ", path, ": ", errno_text());
    bytes = bytes.subspan(static_cast<size_t>(written));
  }
}

// Makes a completed rename durable. Some filesystems cannot fsync a directory (EINVAL): that is
// not a failure of the write itself.
inline void sync_directory(const std::filesystem::path& directory) {
  FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  SFM_CHECK(fd.get() >= 0, "cannot open directory ", directory, " to sync it: ", errno_text());
  SFM_CHECK(::fsync(fd.get()) == 0 || errno == EINVAL, "cannot sync directory ", directory, ": ", errno_text());
}

}  // namespace detail

// The whole content of a regular file.
inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
  detail::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  SFM_CHECK(fd.get() >= 0, "cannot open ", path, ": ", detail::errno_text());
  struct stat info {};
  SFM_CHECK(::fstat(fd.get(), &info) == 0, "cannot stat ", path, ": ", detail::errno_text());
  SFM_CHECK(S_ISREG(info.st_mode), path, " is not a regular file");
  std::vector<std::byte> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    SFM_CHECK(got >= 0, "cannot read ", path, " at byte offset ", done, ": ", detail::errno_text());
    SFM_CHECK(got > 0, path, " ended at byte ", done, " while reading ", bytes.size(), " bytes");
    done += static_cast<size_t>(got);
  }
  return bytes;
}

// Replaces `path` by the concatenation of `pieces`, atomically (see the top of this file).
inline void write_file_atomically(const std::filesystem::path& path,
                                  std::span<const std::span<const std::byte>> pieces) {
  const std::filesystem::path temp = path.string() + ".tmp-" + std::to_string(::getpid());
  detail::FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  SFM_CHECK(fd.get() >= 0, "cannot create ", temp, ": ", detail::errno_text());
  try {
    for (std::span<const std::byte> piece : pieces) detail::write_all(fd.get(), piece, temp);
    SFM_CHECK(::fsync(fd.get()) == 0, "cannot sync ", temp, ": ", detail::errno_text());
    SFM_CHECK(fd.close() == 0, "cannot close ", temp, ": ", detail::errno_text());
    SFM_CHECK(::rename(temp.c_str(), path.c_str()) == 0, "cannot rename ", temp, " to ", path, ": ",
              detail::errno_text());
  } catch (const Error&) {
    ::unlink(temp.c_str());
    throw;
  }
  const std::filesystem::path directory = path.parent_path();
  detail::sync_directory(directory.empty() ? std::filesystem::path(".") : directory);
}

}  // namespace sfm
