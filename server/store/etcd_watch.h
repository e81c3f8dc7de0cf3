// EtcdWatch: a running watch of the keyrings prefix that delivers changes to a
// WatchListener. It resumes after a broken stream on the next endpoint from the revision it
// reached (no change lost or repeated), asks etcd for progress every progress_interval and
// treats a stream silent for three intervals as dead (a hung member), and stops with
// OnResyncNeeded when etcd compacted the history it needs.
#ifndef SESSIONTOKEN_SERVER_STORE_ETCD_WATCH_H_
#define SESSIONTOKEN_SERVER_STORE_ETCD_WATCH_H_

#include <cstdint>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/etcd_client.h"
#include "server/store/etcd_layout.h"
#include "server/store/replicated_store.h"

namespace sessiontoken::store {

class EtcdWatch final : public WatchHandle {
 public:
  // `listener` must outlive the watch.
  static std::unique_ptr<EtcdWatch> Start(std::shared_ptr<EtcdClient> client, EtcdLayout layout,
                                          int64_t start_revision, WatchListener* listener,
                                          absl::Duration progress_interval);
  ~EtcdWatch() override;

 private:
  using Stream = grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;
  enum class End { kBroken, kStopped, kResync };

  EtcdWatch(std::shared_ptr<EtcdClient> client, EtcdLayout layout, int64_t start_revision,
            WatchListener* listener, absl::Duration progress_interval)
      : client_(std::move(client)),
        layout_(std::move(layout)),
        listener_(listener),
        progress_interval_(progress_interval),
        next_revision_(start_revision) {}
  void Run();
  End RunStream(size_t endpoint, absl::Status* error);
  // Handles one response; returns false when the stream must end (`end` says why).
  bool Handle(const etcdserverpb::WatchResponse& resp, End* end, absl::Status* error);
  void Deliver(const etcdserverpb::WatchResponse& resp);
  void Monitor();
  bool Stopping();

  const std::shared_ptr<EtcdClient> client_;
  const EtcdLayout layout_;
  WatchListener* const listener_;
  const absl::Duration progress_interval_;
  int64_t next_revision_;  // watch thread only
  // Watch thread only: the last state reported to the listener. The first stream's creation
  // reports OK, so a listener learns the watch is live without waiting for a loss.
  bool connected_ = false;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;  // the live stream, if any
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Time last_response_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
  std::thread monitor_;
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_ETCD_WATCH_H_
