// EtcdClient: one connection to an etcd cluster through its v3 gRPC API. Every call has a
// deadline per attempt and per call, fails over between the configured endpoints on
// transport or leader-election errors, authenticates with user/password when configured,
// and reports an unreachable cluster as UNAVAILABLE naming every endpoint. Knows nothing
// about keyrings (see etcd_store.h).
#ifndef SESSIONTOKEN_SERVER_STORE_ETCD_CLIENT_H_
#define SESSIONTOKEN_SERVER_STORE_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/store/etcd_options.h"

namespace sessiontoken::store {

class EtcdClient {
 public:
  // Checks the options and reads the TLS files; connects lazily (no network I/O here).
  static absl::StatusOr<std::unique_ptr<EtcdClient>> New(EtcdOptions options);

  // Linearizable reads and transactions, retried on other endpoints until
  // options.request_timeout. `maybe_applied` (optional) is set when an attempt failed after
  // the request may have reached etcd (so a later compare failure may be our own write).
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& req);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& req,
                                                bool* maybe_applied = nullptr);
  absl::StatusOr<etcdserverpb::CompactionResponse> Compact(int64_t revision);

  absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds);
  absl::Status LeaseRevoke(int64_t lease_id);
  // One keepalive round trip (a short stream). A response TTL <= 0 means the lease is gone.
  // `within` (> 0) bounds the whole call, every endpoint included, and each attempt to a
  // third of it, below the options' bounds: a keepalive that took longer than its lease's
  // renewal interval would be too late anyway.
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> LeaseKeepAliveOnce(
      int64_t lease_id, absl::Duration within = absl::ZeroDuration());

  // For long-lived streams (watch): a context carrying the auth token and etcd's
  // require-leader flag (no deadline), and
  // the Watch stub of endpoint `index` (0 <= index < endpoint_count()).
  absl::StatusOr<std::unique_ptr<grpc::ClientContext>> NewStreamContext(size_t index);
  etcdserverpb::Watch::Stub& WatchStub(size_t index);
  size_t endpoint_count() const { return endpoints_.size(); }
  // The endpoint that answered last (calls start there).
  size_t preferred_endpoint() const { return preferred_.load(std::memory_order_relaxed); }
  void set_preferred_endpoint(size_t index) { preferred_.store(index % endpoints_.size()); }
  const std::string& endpoint(size_t index) const { return endpoints_[index]->address; }
  // "host:port,host:port" for messages.
  const std::string& endpoint_list() const { return endpoint_list_; }
  const EtcdOptions& options() const { return options_; }
  // How many times this client obtained an etcd auth token (first use, then renewals).
  int64_t authentications() const { return authentications_.load(); }

 private:
  struct Endpoint {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<etcdserverpb::Auth::Stub> auth;
  };
  using Attempt = std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>;

  explicit EtcdClient(EtcdOptions options) : options_(std::move(options)) {}
  // Runs `attempt` on each endpoint in turn until it succeeds or `request_timeout` (0: the
  // options') passes, each attempt bounded by `attempt_timeout` (0: the options').
  absl::Status Call(absl::string_view what, const Attempt& attempt, bool* maybe_applied,
                    absl::Duration request_timeout = absl::ZeroDuration(),
                    absl::Duration attempt_timeout = absl::ZeroDuration());
  // Adds the auth token to `ctx`, authenticating first when there is none yet.
  absl::Status AddAuth(Endpoint& ep, grpc::ClientContext& ctx, absl::Time deadline);

  const EtcdOptions options_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::string endpoint_list_;
  std::atomic<size_t> preferred_{0};
  std::atomic<int64_t> authentications_{0};
  absl::Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_ETCD_CLIENT_H_
