// ReplicatedStore: what a replica needs from a shared store beyond Store's compare-and-swap:
// a consistent full load, a watch of changes, presence announcements on a lease, and a put
// that succeeds only while the set of announced replicas is exactly the one the caller
// checked (propagation-safe promotion). Implemented by EtcdStore.
#ifndef SESSIONTOKEN_SERVER_STORE_REPLICATED_STORE_H_
#define SESSIONTOKEN_SERVER_STORE_REPLICATED_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/store/store.h"

namespace sessiontoken::store {

// A keyring as read from the store. `status` is DataLoss when the stored value is not a
// sessiontoken record (foreign or damaged); `blob` is then empty and must not replace the
// caller's last good copy.
struct KeyringRecord {
  std::string name;
  absl::Status status;
  VersionedBlob blob;
};

// Every keyring at one store revision (one linearizable read).
struct StoreSnapshot {
  int64_t revision = 0;                   // watch from revision + 1 to miss nothing
  std::vector<KeyringRecord> keyrings;    // sorted by name, damaged ones included
  std::vector<std::string> foreign_keys;  // keys under the prefix that name no keyring
};

// One change seen by a watch. `name` is the raw key (and `status` DataLoss) when the key
// names no valid keyring.
struct KeyringEvent {
  std::string name;
  bool deleted = false;
  absl::Status status;  // DataLoss: the new value is foreign or damaged
  VersionedBlob blob;   // the new value and its version, when !deleted && status.ok()
};

// Callbacks of a watch; called from the watch's own thread, one at a time, in order.
class WatchListener {
 public:
  virtual ~WatchListener() = default;
  // Changes committed at `revision`.
  virtual void OnEvents(int64_t revision, std::vector<KeyringEvent> events) = 0;
  // The stream answered a periodic progress request at store revision `revision`: the
  // caller's copy is fresh as of about now. (etcd 3.4.23 may answer a moment before it
  // delivered the events up to `revision`, etcd-io/etcd#15220: a freshness signal, not a
  // resume point.)
  virtual void OnProgress(int64_t revision) {}
  // History was compacted past the watch's position: changes may have been missed. The
  // watch has stopped; load a fresh StoreSnapshot and watch again from its revision + 1.
  virtual void OnResyncNeeded(int64_t compact_revision) = 0;
  // OK once the watch's stream is created (the first time, and again after it resumed
  // where it left off); not OK when the stream broke (it keeps retrying every endpoint).
  virtual void OnConnection(const absl::Status& status) {}
};

// A running watch; destroying it stops the watch (no callback runs after the destructor).
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

// One replica's announcement.
struct PresenceEntry {
  std::string replica_id;
  int64_t loaded_revision = 0;  // store revision of the snapshot the replica serves
  int64_t mod_revision = 0;     // of the presence key (what promotion compares)
  int64_t create_revision = 0;
};

// All announced replicas at one store revision.
struct PresenceSet {
  int64_t revision = 0;
  std::vector<PresenceEntry> replicas;  // sorted by replica_id
};

// This replica's presence key, held on a lease that a background thread keeps alive.
// Destroying it revokes the lease (best effort), which removes the key.
class PresenceLease {
 public:
  virtual ~PresenceLease() = default;
  // True while this replica can prove its lease is alive: a keepalive succeeded within the
  // lease TTL (measured from when it was sent) and etcd never said the lease is gone.
  // Lock-free; cheap enough for the hot path.
  virtual bool IsLive() const = 0;
  // OK when live, otherwise why not (UNAVAILABLE: no keepalive within the TTL; NOT_FOUND:
  // the lease is gone for good: reload, then join again with a new PresenceLease).
  virtual absl::Status Liveness() const = 0;
  // Updates the announced loaded revision (same key, same lease).
  virtual absl::Status Announce(int64_t loaded_revision) = 0;
  virtual const std::string& replica_id() const = 0;
};

class ReplicatedStore : public Store {
 public:
  // Every keyring at one revision. Damaged and foreign values are reported, not fatal.
  virtual absl::StatusOr<StoreSnapshot> LoadAll() = 0;
  // Watches keyring changes from `start_revision` (> 0) on; see WatchListener. The
  // watch and presence leases keep their own connection: they may outlive the store.
  virtual absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(int64_t start_revision,
                                                             WatchListener* listener) = 0;
  // Grants a lease of `ttl` and creates this replica's presence key under it.
  // AlreadyExists when another live process announces the same replica id.
  virtual absl::StatusOr<std::unique_ptr<PresenceLease>> JoinPresence(const std::string& replica_id,
                                                                      absl::Duration ttl,
                                                                      int64_t loaded_revision) = 0;
  virtual absl::StatusOr<PresenceSet> ListPresence() = 0;
  // Put (as Store::Put) that also requires the announced replicas to be exactly `presence`
  // (as returned by ListPresence): none joined, left, or re-announced since. Aborted with a
  // message naming what changed otherwise. The caller checks the loaded revisions in
  // `presence` before calling.
  virtual absl::StatusOr<uint64_t> PutIfPresenceUnchanged(absl::string_view name,
                                                          absl::string_view data,
                                                          uint64_t expected_version,
                                                          const PresenceSet& presence) = 0;
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_REPLICATED_STORE_H_
