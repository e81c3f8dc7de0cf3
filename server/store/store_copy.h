// CopyKeyrings: copies every sealed keyring from one Store to another (file data dir ->
// etcd for a migration, etcd -> file for a backup). Blobs move as they are: no KEK is
// needed and key material is never opened. Versions are the destination's own.
#ifndef SESSIONTOKEN_SERVER_STORE_STORE_COPY_H_
#define SESSIONTOKEN_SERVER_STORE_STORE_COPY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/store/store.h"

namespace sessiontoken::store {

struct CopyOptions {
  // Replace keyrings that already exist in the destination (compare-and-swap on the
  // version read just before). Without it the copy refuses to start when any exists.
  bool overwrite = false;
};

struct CopyReport {
  std::vector<std::string> created;   // did not exist in the destination
  std::vector<std::string> replaced;  // existed and were overwritten (overwrite only)
};

// Reads every source keyring first (any unreadable one: its error, nothing written), then
// checks the destination (an existing keyring without `overwrite`: FailedPrecondition
// naming them, nothing written), then writes. A write that loses a race stops the copy
// with Aborted; the error names what was already written.
absl::StatusOr<CopyReport> CopyKeyrings(Store& from, Store& to, const CopyOptions& options);

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_STORE_COPY_H_
