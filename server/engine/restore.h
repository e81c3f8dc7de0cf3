// Restoring a backup (store/backup_file.h) into a store, offline (sessiontoken-restore):
// first a plan that says, per keyring, what the store holds and what will come back, then
// the writes. Into an empty store each keyring comes back at its own revision with its
// high-water mark. A keyring the store already holds (or once held: its mark) is replaced
// only with `overwrite`, and then as a new revision above both, so that rollback protection
// (every replica's and the marks') stays intact while the backup's keys come back.
#ifndef SESSIONTOKEN_SERVER_ENGINE_RESTORE_H_
#define SESSIONTOKEN_SERVER_ENGINE_RESTORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/audit.h"
#include "server/keyring/keyring.h"
#include "server/store/sealer.h"
#include "server/store/store.h"
#include "sessiontoken/v1/keyring.pb.h"

namespace sessiontoken::engine {

// One keyring of the backup and what restoring it does.
struct RestoreItem {
  std::shared_ptr<const keyring::Keyring> backup;  // as the backup holds it
  uint64_t store_version = 0;                      // of the store's record (0: absent)
  uint64_t mark_version = 0;    // of the store's high-water mark record (0: absent)
  bool replaces = false;        // the store holds (or held) this keyring: needs overwrite
  uint64_t write_revision = 0;  // the revision it is written at
  std::string description;      // one line for the operator: what comes back, what goes
  // Its revocation shards in the backup (record name, entries), written after the keyring,
  // each merged with the store's shard of that name: a restore never drops a revocation.
  std::vector<std::pair<std::string, v1::StoredRevocations>> revocations;
  size_t revocation_entries = 0;
};

struct RestorePlan {
  std::vector<RestoreItem> items;  // sorted by keyring name
  int replacing() const;           // items that need overwrite
};

// Checks the backup (MAC, every keyring opens with `sealer`; store::CheckBackup) and reads
// the store to plan the restore. Changes nothing.
absl::StatusOr<RestorePlan> PlanRestore(store::Store& store, const store::Sealer& sealer,
                                        const v1::BackupFile& backup);

struct RestoreOptions {
  bool overwrite = false;     // replace keyrings the store holds or held
  std::string caller;         // for the audit log
  AuditLog* audit = nullptr;  // may be null
};

// Writes the plan (sealed with the current KEK; each keyring then its mark, compare-and-swap
// on the versions the plan read, then its revocation shards merged with the store's).
// FailedPrecondition (nothing written) when the plan replaces keyrings and !overwrite. A write that
// fails stops the restore; the error says which keyrings were already restored.
absl::Status ApplyRestore(store::Store& store, const store::Sealer& sealer, const RestorePlan& plan,
                          const RestoreOptions& options);

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_RESTORE_H_
