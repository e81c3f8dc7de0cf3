// FileStore: the embedded default store, one file per keyring under <data_dir>/keyrings/.
// Writes are crash-safe: temp file, fsync, rename, directory fsync; a kill -9 at any instant
// leaves either the old or the new file. An exclusive lock on <data_dir>/LOCK keeps a second
// server off the same directory. Once the rename has happened the change is the one on disk:
// Put reports it (OK, new version) even if the directory fsync then fails; that failure is
// reported separately (pending_sync_error, and a WARNING on stderr) and retried.
#ifndef SESSIONTOKEN_SERVER_STORE_FILE_STORE_H_
#define SESSIONTOKEN_SERVER_STORE_FILE_STORE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "server/store/store.h"

namespace sessiontoken::store {

class FileStore final : public Store {
 public:
  // Creates the directory (0700) if needed and takes the lock. FailedPrecondition when
  // another process holds it.
  static absl::StatusOr<std::unique_ptr<FileStore>> Open(const std::string& data_dir);
  // Where every FileStore's warnings go (process-wide; default: a text line on stderr).
  // The server routes them into its own log format.
  static void SetWarningLog(void (*log)(absl::string_view message));
  ~FileStore() override;

  absl::StatusOr<std::vector<std::string>> List() override;
  absl::StatusOr<VersionedBlob> Get(absl::string_view name) override;
  absl::StatusOr<uint64_t> Put(absl::string_view name, absl::string_view data,
                               uint64_t expected_version) override;

  // Removes temp files a crash left mid-write (incomplete by definition; they are ignored
  // by List/Get). Call only once the keyrings loaded, so a refused start changes nothing.
  // Returns how many were removed.
  int RemoveTempFiles();

  // Path of a keyring's file (for messages and tests).
  std::string PathOf(absl::string_view name) const;

  // OK, or why the newest rename is not known to be durable: its directory fsync failed
  // (the change is visible and was reported OK, but a power loss may undo it). Every later
  // Put fsyncs the directory again, which clears this once it succeeds.
  absl::Status pending_sync_error() const;

 private:
  friend class FileStoreTestPeer;  // tests/unit: injects directory-fsync failures
  using SyncDirFn = std::function<absl::Status(const std::string& dir)>;

  FileStore(std::string dir, int lock_fd);
  absl::StatusOr<VersionedBlob> ReadLocked(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fsyncs the directory after a rename; records (and logs) a failure instead of failing.
  void SyncDirAfterRename(absl::string_view name, uint64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;  // <data_dir>/keyrings
  const int lock_fd_;
  mutable absl::Mutex mu_;  // serialises Put's read-compare-write within this process
  SyncDirFn sync_dir_;      // fsync of a directory (replaced only by tests)
  absl::Status pending_sync_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_FILE_STORE_H_
