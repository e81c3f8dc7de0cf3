// EtcdStore: the replicated store. One etcd key per keyring (<prefix>keyrings/<name>, the
// sealed blob framed as in etcd_layout.h; etcd never sees key material), the keyring's
// store version is the key's etcd mod_revision, and every write is a transaction that
// compares it. Replicas announce themselves under <prefix>presence/ on leases.
//
// Promotion (PutIfPresenceUnchanged) is one etcd transaction whose compares are
//   1. the keyring key:   mod_revision == expected_version  (create_revision == 0 for 0)
//   2. each listed presence key:  mod_revision == the listed one (so none re-announced
//      or left: a deleted key compares as mod_revision 0)
//   3. the whole presence range [presence/, presence0):  create_revision < R + 1, where R
//      is the revision ListPresence read at. etcd applies a range compare to every key in
//      the range, so any presence key created after R (a replica that joined, or re-joined
//      on a new lease) fails it; an empty range compares as create_revision 0.
// Together the set of presence keys at commit time is exactly the listed one, unchanged.
// etcd caps compares per transaction (--max-txn-ops, default 128): up to 126 replicas.
#ifndef SESSIONTOKEN_SERVER_STORE_ETCD_STORE_H_
#define SESSIONTOKEN_SERVER_STORE_ETCD_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "server/store/etcd_client.h"
#include "server/store/etcd_layout.h"
#include "server/store/etcd_options.h"
#include "server/store/replicated_store.h"

namespace sessiontoken::store {

class EtcdStore final : public ReplicatedStore {
 public:
  // Largest sealed keyring accepted (etcd's default request limit is 1.5 MiB).
  static constexpr size_t kMaxValueBytes = 1 << 20;

  // Checks the options; connects lazily (a down cluster shows up as UNAVAILABLE on use).
  static absl::StatusOr<std::unique_ptr<EtcdStore>> New(EtcdOptions options);

  // Store. Aborted on a lost compare: "keyring X changed concurrently (expected revision
  // A, found B)". A write whose answer was lost and that etcd did commit is recognised by
  // its value and reported as the success it was.
  absl::StatusOr<std::vector<std::string>> List() override;
  absl::StatusOr<VersionedBlob> Get(absl::string_view name) override;
  absl::StatusOr<uint64_t> Put(absl::string_view name, absl::string_view data,
                               uint64_t expected_version) override;

  // ReplicatedStore.
  absl::StatusOr<StoreSnapshot> LoadAll() override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(int64_t start_revision,
                                                     WatchListener* listener) override;
  absl::StatusOr<std::unique_ptr<PresenceLease>> JoinPresence(const std::string& replica_id,
                                                              absl::Duration ttl,
                                                              int64_t loaded_revision) override;
  // Entries whose value is unreadable carry loaded_revision -1 (they block promotion).
  absl::StatusOr<PresenceSet> ListPresence() override;
  absl::StatusOr<uint64_t> PutIfPresenceUnchanged(absl::string_view name, absl::string_view data,
                                                  uint64_t expected_version,
                                                  const PresenceSet& presence) override;

  EtcdClient& client() { return *client_; }
  const EtcdLayout& layout() const { return layout_; }

 private:
  EtcdStore(std::shared_ptr<EtcdClient> client, EtcdLayout layout)
      : client_(std::move(client)), layout_(std::move(layout)) {}
  // Shared by Put and PutIfPresenceUnchanged: adds the keyring compare, the put and the
  // failure-branch reads to `txn`, runs it, and explains a failed compare.
  absl::StatusOr<uint64_t> CasPut(absl::string_view name, absl::string_view data,
                                  uint64_t expected_version, etcdserverpb::TxnRequest txn,
                                  const PresenceSet* presence);

  const std::shared_ptr<EtcdClient> client_;  // shared with watches and presence leases
  const EtcdLayout layout_;
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_ETCD_STORE_H_
