// EtcdPresence: this replica's presence key <prefix>presence/<replica_id> on its own etcd
// lease, kept alive by a background thread (a keepalive every TTL/3). Liveness is proven
// only by etcd's answers: the lease counts as alive until the send time of the last
// successful keepalive plus the TTL etcd granted in it, and as gone for good once etcd
// says so (TTL <= 0, or the presence key vanished).
#ifndef SESSIONTOKEN_SERVER_STORE_ETCD_PRESENCE_H_
#define SESSIONTOKEN_SERVER_STORE_ETCD_PRESENCE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/etcd_client.h"
#include "server/store/etcd_layout.h"
#include "server/store/replicated_store.h"

namespace sessiontoken::store {

class EtcdPresence final : public PresenceLease {
 public:
  // Grants a lease (TTL rounded up to whole seconds, at least 2 s) and creates the presence
  // key under it. AlreadyExists when the key exists (another process uses this id, or a
  // previous process's lease has not expired yet).
  static absl::StatusOr<std::unique_ptr<EtcdPresence>> Join(std::shared_ptr<EtcdClient> client,
                                                            EtcdLayout layout,
                                                            std::string replica_id,
                                                            absl::Duration ttl,
                                                            int64_t loaded_revision);
  // Stops the keepalives and revokes the lease (bounded by the request timeout).
  ~EtcdPresence() override;

  bool IsLive() const override;
  absl::Status Liveness() const override;
  absl::Status Announce(int64_t loaded_revision) override;
  const std::string& replica_id() const override { return replica_id_; }
  int64_t lease_id() const { return lease_id_; }

 private:
  EtcdPresence(std::shared_ptr<EtcdClient> client, EtcdLayout layout, std::string replica_id,
               int64_t lease_id, absl::Duration ttl)
      : client_(std::move(client)),
        layout_(std::move(layout)),
        replica_id_(std::move(replica_id)),
        lease_id_(lease_id),
        ttl_(ttl) {}
  void KeepAliveLoop();
  void ExtendTo(absl::Time until);
  void MarkGone(absl::Status why);

  const std::shared_ptr<EtcdClient> client_;
  const EtcdLayout layout_;
  const std::string replica_id_;
  const int64_t lease_id_;
  const absl::Duration ttl_;
  std::atomic<int64_t> live_until_ns_{0};  // unix nanos
  std::atomic<bool> gone_{false};

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_ETCD_PRESENCE_H_
