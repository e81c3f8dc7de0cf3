// Replica: keeps a replica's Engine in step with a store shared by several replicas. It
// loads every keyring once (the engine is NOT ready until then), watches the store and
// applies each change within milliseconds, reloads everything when the watch lost history
// (compaction) and periodically as a backstop, and announces on a presence lease which
// store revision this replica has loaded (what promotions wait for). While it cannot prove
// that lease alive it tells the engine it may be behind, and after losing the lease it
// reloads before it announces itself again.
#ifndef SESSIONTOKEN_SERVER_ENGINE_REPLICA_H_
#define SESSIONTOKEN_SERVER_ENGINE_REPLICA_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/engine.h"
#include "server/store/replicated_store.h"

namespace sessiontoken::engine {

struct ReplicaOptions {
  // Unique among the replicas sharing the store (a second live one with the same id is
  // refused by the store until the first one's lease ends).
  std::string replica_id;
  // Lease TTL of the presence key: how long a replica that stopped answering (crashed,
  // paused, cut off) holds up promotions, and the longest a replica can be unaware that
  // it may be behind.
  absl::Duration presence_ttl = absl::Seconds(10);
  // Full reload every this often, whatever the watch says (0 = never).
  absl::Duration resync_interval = absl::Seconds(60);
  // Wait between attempts when the store does not answer (first load, join, reload).
  absl::Duration retry_interval = absl::Milliseconds(500);
  // The copy counts as stale (logged, shown in Status) when not confirmed fresh this long.
  absl::Duration stale_after = absl::Seconds(10);
  // Where the replica reports (level "INFO"/"WARNING"/"ERROR", message). May be empty.
  std::function<void(absl::string_view level, absl::string_view message)> log;
};

// What an operator sees of a replica (health details, logs, metrics).
struct ReplicaStatus {
  std::string replica_id;
  bool ready = false;            // the first full load is done
  bool lease_live = false;       // presence lease confirmed by etcd within its TTL
  bool watch_connected = false;  // the watch has a working stream
  int64_t loaded_revision = 0;   // every change up to this store revision is served
  int64_t announced_revision = 0;
  absl::Duration staleness = absl::InfiniteDuration();  // since last confirmed fresh
  int64_t full_loads = 0;
  int64_t watch_restarts = 0;  // watches started again after lost history or failures
};

class Replica final : public store::WatchListener, public ReplicaState {
 public:
  // Starts the background work on `engine` (made by Engine::NewReplica; both must outlive
  // the Replica). Returns at once: the engine becomes ready after the first full load.
  static absl::StatusOr<std::unique_ptr<Replica>> Start(Engine* engine, ReplicaOptions options);
  // Stops the watch and the thread and leaves (revokes the presence lease).
  ~Replica() override;
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // ReplicaState.
  bool MayBeBehind() const override;
  ReplicaStatus Status() const;

  // store::WatchListener (the watch's thread).
  void OnEvents(int64_t revision, std::vector<store::KeyringEvent> events) override;
  void OnProgress(int64_t revision) override;
  void OnResyncNeeded(int64_t compact_revision) override;
  void OnConnection(const absl::Status& status) override;

 private:
  Replica(Engine* engine, ReplicaOptions options)
      : engine_(engine), store_(engine->replicated_store()), options_(std::move(options)) {}
  void Run();
  // One round of the background work; returns false when the store failed (retry soon).
  bool Step();
  bool EnsureJoined();
  bool FullLoad();
  void Announce();
  void LogStaleness();
  void Log(absl::string_view level, absl::string_view message) const;
  void Fresh() { last_fresh_ns_.store(absl::ToUnixNanos(absl::Now())); }

  Engine* const engine_;
  store::ReplicatedStore* const store_;
  const ReplicaOptions options_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool resync_needed_ ABSL_GUARDED_BY(mu_) = true;  // the first load
  bool watch_stopped_ ABSL_GUARDED_BY(mu_) = true;
  int64_t wanted_announce_ ABSL_GUARDED_BY(mu_) = 0;

  // Owned by the background thread (read by Status() under mu_ via the atomics below).
  std::unique_ptr<store::WatchHandle> watch_;
  std::shared_ptr<store::PresenceLease> lease_;
  absl::Time next_resync_ = absl::InfinitePast();
  int64_t watches_started_ = 0;
  bool stale_logged_ = false;

  // The lease this replica serves under: set only after a full load that followed the
  // join. Null while (re)joining.
  std::atomic<std::shared_ptr<store::PresenceLease>> serving_lease_;
  std::atomic<int64_t> loaded_revision_{0};
  std::atomic<int64_t> announced_revision_{0};
  std::atomic<int64_t> last_fresh_ns_{0};
  std::atomic<bool> watch_connected_{false};
  std::atomic<int64_t> full_loads_{0};
  std::atomic<int64_t> watch_restarts_{0};
  std::thread thread_;
};

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_REPLICA_H_
