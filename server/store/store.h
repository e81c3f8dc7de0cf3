// Store: where sealed keyrings live. Values are opaque (already encrypted) blobs; every
// write is a compare-and-swap on the keyring's store version, so concurrent writers (other
// threads, other replicas) can never silently overwrite each other.
#ifndef SESSIONTOKEN_SERVER_STORE_STORE_H_
#define SESSIONTOKEN_SERVER_STORE_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sessiontoken::store {

struct VersionedBlob {
  std::string data;
  uint64_t version = 0;  // > 0; opaque CAS token, strictly increasing per keyring
};

class Store {
 public:
  virtual ~Store() = default;
  // Names of all stored keyrings, sorted.
  virtual absl::StatusOr<std::vector<std::string>> List() = 0;
  // NotFound when absent; DataLoss when the stored record is damaged.
  virtual absl::StatusOr<VersionedBlob> Get(absl::string_view name) = 0;
  // Writes `data` if the current version equals `expected_version` (0 = must not exist).
  // Returns the new version. Aborted on a version conflict. OK means the change is in
  // place (later reads, and a restart, see it) and durable; a store that made the change
  // visible but could not confirm its durability still returns OK (the change is not
  // undone by reporting failure) and reports that through its own channel
  // (FileStore::pending_sync_error). An error means nothing changed.
  virtual absl::StatusOr<uint64_t> Put(absl::string_view name, absl::string_view data,
                                       uint64_t expected_version) = 0;
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_STORE_H_
