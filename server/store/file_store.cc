#include "server/store/file_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/crypto/random.h"

namespace sessiontoken::store {
namespace {

// File layout: "STFS1\n" (6) | version (8, big-endian) | blob.
constexpr absl::string_view kMagic = "STFS1\n";
constexpr size_t kHeaderSize = 6 + 8;
constexpr absl::string_view kSuffix = ".keyring";

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status MkdirP(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return absl::OkStatus();
  return ErrnoStatus("cannot create directory", path);
}

absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::atomic<void (*)(absl::string_view)> warning_log{nullptr};

}  // namespace

void FileStore::SetWarningLog(void (*log)(absl::string_view message)) { warning_log.store(log); }

absl::StatusOr<std::unique_ptr<FileStore>> FileStore::Open(const std::string& data_dir) {
  if (data_dir.empty()) return absl::InvalidArgumentError("data_dir: must not be empty");
  if (absl::Status s = MkdirP(data_dir); !s.ok()) return s;
  const std::string dir = data_dir + "/keyrings";
  if (absl::Status s = MkdirP(dir); !s.ok()) return s;
  const std::string lock_path = data_dir + "/LOCK";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot open lock file", lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", data_dir, " is in use by another sessiontoken process (",
                     lock_path, " is locked)"));
  }
  return std::unique_ptr<FileStore>(new FileStore(dir, fd));
}

FileStore::FileStore(std::string dir, int lock_fd)
    : dir_(std::move(dir)), lock_fd_(lock_fd), sync_dir_(FsyncDir) {}

absl::Status FileStore::pending_sync_error() const {
  absl::MutexLock lock(&mu_);
  return pending_sync_error_;
}

void FileStore::SyncDirAfterRename(absl::string_view name, uint64_t version) {
  absl::Status s = sync_dir_(dir_);
  if (s.ok()) {
    pending_sync_error_ = absl::OkStatus();
    return;
  }
  // The rename happened: the new file is what every reader (and a restart) sees, so the
  // change is reported as done. Only its survival of a power loss is in doubt.
  pending_sync_error_ = s;
  const std::string message = absl::StrCat(
      "file store: ", s.message(), ". Keyring ", name, " version ", version,
      " is in place but may not survive a power loss until a later write's directory fsync "
      "succeeds; check the disk.");
  if (auto* log = warning_log.load(); log != nullptr) {
    log(message);
    return;
  }
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()),
                   " WARNING ", message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

int FileStore::RemoveTempFiles() {
  absl::MutexLock lock(&mu_);
  int removed = 0;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (absl::StrContains(e->d_name, ".tmp.") &&
          ::unlink((dir_ + "/" + e->d_name).c_str()) == 0) {
        ++removed;
      }
    }
    ::closedir(d);
  }
  return removed;
}

FileStore::~FileStore() { ::close(lock_fd_); }

std::string FileStore::PathOf(absl::string_view name) const {
  return absl::StrCat(dir_, "/", name, kSuffix);
}

absl::StatusOr<std::vector<std::string>> FileStore::List() {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ErrnoStatus("cannot list", dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    absl::string_view n = e->d_name;
    if (absl::EndsWith(n, kSuffix) && !absl::StrContains(n, ".tmp.")) {
      n.remove_suffix(kSuffix.size());
      names.emplace_back(n);
    }
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<VersionedBlob> FileStore::Get(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  return ReadLocked(name);
}

absl::StatusOr<VersionedBlob> FileStore::ReadLocked(absl::string_view name) {
  const std::string path = PathOf(name);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("keyring ", name, " not stored"));
    return ErrnoStatus("cannot open", path);
  }
  absl::Cleanup closer = [fd] { ::close(fd); };
  std::string content;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", path);
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > (64u << 20)) return absl::DataLossError(path + ": file too large");
  }
  if (content.size() < kHeaderSize || absl::string_view(content).substr(0, 6) != kMagic) {
    return absl::DataLossError(
        absl::StrCat(path, ": not a sessiontoken keyring file (bad header); refusing to touch it"));
  }
  VersionedBlob b;
  for (int i = 0; i < 8; ++i) b.version = (b.version << 8) | static_cast<uint8_t>(content[6 + i]);
  if (b.version == 0) return absl::DataLossError(path + ": invalid version 0");
  b.data = content.substr(kHeaderSize);
  return b;
}

absl::StatusOr<uint64_t> FileStore::Put(absl::string_view name, absl::string_view data,
                                        uint64_t expected_version) {
  absl::MutexLock lock(&mu_);
  uint64_t current = 0;
  absl::StatusOr<VersionedBlob> existing = ReadLocked(name);
  if (existing.ok()) {
    current = existing->version;
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();  // never overwrite a file we cannot read
  }
  if (current != expected_version) {
    return absl::AbortedError(absl::StrCat("keyring ", name, ": version conflict (expected ",
                                           expected_version, ", found ", current, ")"));
  }
  const uint64_t next = current + 1;
  std::string content(kMagic);
  for (int i = 7; i >= 0; --i) content.push_back(static_cast<char>((next >> (8 * i)) & 0xff));
  content.append(data.data(), data.size());

  const std::string path = PathOf(name);
  const std::string tmp = absl::StrCat(path, ".tmp.", crypto::RandomUint32());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot create", tmp);
  absl::Status s = WriteAll(fd, content, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus("cannot fsync", tmp);
  if (::close(fd) != 0 && s.ok()) s = ErrnoStatus("cannot close", tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoStatus("cannot rename", tmp);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  SyncDirAfterRename(name, next);
  return next;
}

}  // namespace sessiontoken::store
