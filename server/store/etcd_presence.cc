#include "server/store/etcd_presence.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sessiontoken::store {
namespace {

constexpr int64_t kMinTtlSeconds = 2;  // etcd's minimum with default election settings

etcdserverpb::RequestOp PutOp(const std::string& key, std::string value, int64_t lease) {
  etcdserverpb::RequestOp op;
  auto* put = op.mutable_request_put();
  put->set_key(key);
  put->set_value(std::move(value));
  put->set_lease(lease);
  return op;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdPresence>> EtcdPresence::Join(std::shared_ptr<EtcdClient> client,
                                                                 EtcdLayout layout,
                                                                 std::string replica_id,
                                                                 absl::Duration ttl,
                                                                 int64_t loaded_revision) {
  if (absl::Status s = EtcdLayout::ValidateReplicaId(replica_id); !s.ok()) return s;
  const int64_t ttl_s = std::max<int64_t>(
      kMinTtlSeconds, static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(ttl))));
  const absl::Time sent = absl::Now();
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> grant = client->LeaseGrant(ttl_s);
  if (!grant.ok()) return grant.status();
  const std::string key = layout.PresenceKey(replica_id);
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(0);
  *txn.add_success() = PutOp(key, EtcdLayout::EncodePresence(loaded_revision), grant->id());
  absl::StatusOr<etcdserverpb::TxnResponse> resp = client->Txn(txn);
  if (!resp.ok() || !resp->succeeded()) {
    client->LeaseRevoke(grant->id()).IgnoreError();  // best effort; it expires anyway
    if (!resp.ok()) return resp.status();
    return absl::AlreadyExistsError(absl::StrCat(
        "replica id ", replica_id, " is already announced at ", key,
        " (another process uses this id, or a previous process's lease has not expired yet)"));
  }
  std::unique_ptr<EtcdPresence> p(new EtcdPresence(std::move(client), std::move(layout),
                                                   std::move(replica_id), grant->id(),
                                                   absl::Seconds(grant->ttl())));
  p->ExtendTo(sent + absl::Seconds(grant->ttl()));
  p->thread_ = std::thread([raw = p.get()] { raw->KeepAliveLoop(); });
  return p;
}

EtcdPresence::~EtcdPresence() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  if (!gone_.load()) client_->LeaseRevoke(lease_id_).IgnoreError();
}

void EtcdPresence::ExtendTo(absl::Time until) {
  const int64_t ns = absl::ToUnixNanos(until);
  int64_t cur = live_until_ns_.load();
  while (ns > cur && !live_until_ns_.compare_exchange_weak(cur, ns)) {
  }
}

void EtcdPresence::MarkGone(absl::Status why) {
  absl::MutexLock lock(&mu_);
  last_error_ = std::move(why);
  gone_.store(true);
}

bool EtcdPresence::IsLive() const {
  return !gone_.load(std::memory_order_acquire) &&
         absl::ToUnixNanos(absl::Now()) < live_until_ns_.load(std::memory_order_acquire);
}

absl::Status EtcdPresence::Liveness() const {
  absl::MutexLock lock(&mu_);
  if (gone_.load()) return last_error_;
  if (IsLive()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("replica ", replica_id_, ": no successful etcd keepalive for lease ", lease_id_,
                   " within its TTL of ", absl::FormatDuration(ttl_),
                   " (last error: ", last_error_.ok() ? "none" : last_error_.message(), ")"));
}

void EtcdPresence::KeepAliveLoop() {
  const absl::Duration interval = ttl_ / 3;
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), interval)) {
    mu_.Unlock();
    const absl::Time sent = absl::Now();
    // Bounded by the renewal interval: a member that hangs costs a third of it, and the
    // next endpoint still renews the lease well within its TTL.
    absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> r =
        client_->LeaseKeepAliveOnce(lease_id_, interval);
    mu_.Lock();
    if (!r.ok()) {
      last_error_ = r.status();
      continue;
    }
    if (r->ttl() <= 0) {
      last_error_ = absl::NotFoundError(
          absl::StrCat("replica ", replica_id_, ": etcd lease ", lease_id_,
                       " expired or was revoked; reload the keyrings, then join again"));
      gone_.store(true);
      return;
    }
    last_error_ = absl::OkStatus();
    ExtendTo(sent + absl::Seconds(r->ttl()));
  }
}

absl::Status EtcdPresence::Announce(int64_t loaded_revision) {
  if (gone_.load()) return Liveness();
  const std::string key = layout_.PresenceKey(replica_id_);
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();  // our key, still on our lease
  cmp->set_key(key);
  cmp->set_target(etcdserverpb::Compare::LEASE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_lease(lease_id_);
  *txn.add_success() = PutOp(key, EtcdLayout::EncodePresence(loaded_revision), lease_id_);
  absl::StatusOr<etcdserverpb::TxnResponse> resp = client_->Txn(txn);
  if (!resp.ok()) {
    if (absl::IsNotFound(resp.status())) MarkGone(resp.status());  // lease not found
    return resp.status();
  }
  if (!resp->succeeded()) {
    MarkGone(absl::NotFoundError(absl::StrCat("replica ", replica_id_, ": presence key ", key,
                                              " is gone (lease ", lease_id_, " expired)")));
    return Liveness();
  }
  return absl::OkStatus();
}

}  // namespace sessiontoken::store
