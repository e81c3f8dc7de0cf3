#include "server/engine/replica.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::engine {
namespace {

void RaiseTo(std::atomic<int64_t>& value, int64_t to) {
  int64_t cur = value.load();
  while (cur < to && !value.compare_exchange_weak(cur, to)) {
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Replica>> Replica::Start(Engine* engine, ReplicaOptions options) {
  if (engine == nullptr || engine->replicated_store() == nullptr) {
    return absl::InvalidArgumentError("a replica needs an engine made by Engine::NewReplica");
  }
  if (options.replica_id.empty()) return absl::InvalidArgumentError("replica_id: required");
  if (options.presence_ttl < absl::Seconds(2)) {
    return absl::InvalidArgumentError("presence_ttl: at least 2s");
  }
  std::unique_ptr<Replica> r(new Replica(engine, std::move(options)));
  engine->SetReplicaState(r.get());
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

Replica::~Replica() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  watch_.reset();  // no callback runs after this
  engine_->SetReplicaState(nullptr);
  serving_lease_.store(nullptr);
  lease_.reset();  // leaves: revokes the lease, which removes the presence key
}

void Replica::Run() {
  // Awake often enough to notice a lost lease well within its TTL.
  const absl::Duration tick = std::min(absl::Seconds(1), options_.presence_ttl / 4);
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    mu_.Unlock();
    const bool ok = Step();
    mu_.Lock();
    auto wake = [](Replica* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) {
      return r->stop_ || r->resync_needed_ || r->wanted_announce_ > r->announced_revision_.load();
    };
    if (ok) {
      mu_.AwaitWithTimeout(absl::Condition(+wake, this), tick);
    } else {  // the store failed: wait before retrying, even with a (re)load pending
      mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.retry_interval);
    }
  }
}

bool Replica::Step() {
  if (!EnsureJoined()) return false;
  bool reload;
  {
    absl::MutexLock lock(&mu_);
    reload = resync_needed_ || watch_stopped_;
  }
  if (reload || absl::Now() >= next_resync_) {
    if (!FullLoad()) return false;
  }
  Announce();
  LogStaleness();
  return true;
}

bool Replica::EnsureJoined() {
  if (lease_ != nullptr) {
    const absl::Status live = lease_->Liveness();
    if (!absl::IsNotFound(live)) return true;  // alive, or not confirmed yet: keep it
    Log("WARNING", absl::StrCat("presence lease lost (", live.message(),
                                "): reloading every keyring before joining again"));
    serving_lease_.store(nullptr);
    lease_.reset();
  }
  // Joined with revision 0: promotions wait for this replica until it has loaded.
  absl::StatusOr<std::unique_ptr<store::PresenceLease>> joined =
      store_->JoinPresence(options_.replica_id, options_.presence_ttl, 0);
  if (!joined.ok()) {
    Log("WARNING", absl::StrCat("cannot announce replica ", options_.replica_id, ": ",
                                joined.status().message(), " (retrying)"));
    return false;
  }
  lease_ = *std::move(joined);
  announced_revision_.store(0);
  absl::MutexLock lock(&mu_);
  resync_needed_ = true;
  return true;
}

bool Replica::FullLoad() {
  absl::StatusOr<store::StoreSnapshot> snap = store_->LoadAll();
  if (!snap.ok()) {
    Log("WARNING", absl::StrCat("cannot load keyrings: ", snap.status().message(),
                                engine_->ready() ? " (serving the last good copy)" : ""));
    return false;
  }
  const bool first = !engine_->ready();
  for (const std::string& problem : engine_->InstallSnapshot(*snap)) Log("ERROR", problem);
  full_loads_.fetch_add(1);
  RaiseTo(loaded_revision_, snap->revision);
  Fresh();
  bool restart;
  {
    absl::MutexLock lock(&mu_);
    restart = watch_stopped_;
    resync_needed_ = false;
  }
  if (restart) {
    watch_.reset();  // not under mu_: its callbacks take mu_
    absl::StatusOr<std::unique_ptr<store::WatchHandle>> w = store_->Watch(snap->revision + 1, this);
    if (!w.ok()) {
      Log("WARNING", absl::StrCat("cannot watch the store: ", w.status().message()));
      return false;
    }
    watch_ = *std::move(w);
    if (watches_started_++ > 0) watch_restarts_.fetch_add(1);  // every watch after the first
    absl::MutexLock lock(&mu_);
    watch_stopped_ = false;
  }
  next_resync_ = options_.resync_interval > absl::ZeroDuration()
                     ? absl::Now() + options_.resync_interval
                     : absl::InfiniteFuture();
  serving_lease_.store(lease_);  // everything committed before the join is loaded
  if (first) {
    Log("INFO",
        absl::StrCat("replica ", options_.replica_id, " loaded ", engine_->ListKeyrings().size(),
                     " keyring(s) at store revision ", snap->revision));
  }
  absl::MutexLock lock(&mu_);
  wanted_announce_ = std::max(wanted_announce_, loaded_revision_.load());
  return true;
}

void Replica::Announce() {
  int64_t want;
  {
    absl::MutexLock lock(&mu_);
    want = wanted_announce_;
  }
  if (want <= announced_revision_.load() || lease_ == nullptr) return;
  if (!engine_->ready()) return;  // a first load refused (a KEK it lacks): never announced
  if (serving_lease_.load() != lease_) return;  // not loaded since this join
  if (absl::Status s = lease_->Announce(want); !s.ok()) {
    Log("WARNING", absl::StrCat("cannot announce loaded revision ", want, ": ", s.message()));
    return;
  }
  announced_revision_.store(want);
}

void Replica::LogStaleness() {
  const ReplicaStatus s = Status();
  const bool stale = s.staleness > options_.stale_after || !s.lease_live;
  if (stale && !stale_logged_) {
    Log("WARNING",
        absl::StrCat("snapshot not confirmed fresh for ", absl::FormatDuration(s.staleness),
                     " (store revision ", s.loaded_revision, ", lease ",
                     s.lease_live ? "live" : "not confirmed", ", watch ",
                     s.watch_connected ? "connected" : "disconnected",
                     "): serving the last good copy; tokens of keys it does not know get "
                     "UNAVAILABLE"));
  } else if (!stale && stale_logged_) {
    Log("INFO", absl::StrCat("snapshot fresh again at store revision ", s.loaded_revision));
  }
  stale_logged_ = stale;
}

bool Replica::MayBeBehind() const {
  if (!engine_->ready()) return true;
  std::shared_ptr<store::PresenceLease> lease = serving_lease_.load();
  return lease == nullptr || !lease->IsLive();
}

ReplicaStatus Replica::Status() const {
  ReplicaStatus s;
  s.replica_id = options_.replica_id;
  s.ready = engine_->ready();
  std::shared_ptr<store::PresenceLease> lease = serving_lease_.load();
  s.lease_live = lease != nullptr && lease->IsLive();
  s.watch_connected = watch_connected_.load();
  s.loaded_revision = loaded_revision_.load();
  s.announced_revision = announced_revision_.load();
  if (const int64_t fresh = last_fresh_ns_.load(); fresh > 0) {
    s.staleness = std::max(absl::ZeroDuration(), absl::Now() - absl::FromUnixNanos(fresh));
  }
  s.full_loads = full_loads_.load();
  s.watch_restarts = watch_restarts_.load();
  return s;
}

void Replica::OnEvents(int64_t revision, std::vector<store::KeyringEvent> events) {
  for (const std::string& problem : engine_->ApplyEvents(events)) Log("ERROR", problem);
  RaiseTo(loaded_revision_, revision);
  Fresh();
  absl::MutexLock lock(&mu_);
  wanted_announce_ = std::max(wanted_announce_, revision);
}

void Replica::OnProgress(int64_t) { Fresh(); }

void Replica::OnResyncNeeded(int64_t compact_revision) {
  Log("WARNING", absl::StrCat("the store compacted its history past the watch (revision ",
                              compact_revision, "): reloading every keyring"));
  absl::MutexLock lock(&mu_);
  resync_needed_ = true;
  watch_stopped_ = true;
}

void Replica::OnConnection(const absl::Status& status) {
  const bool ok = status.ok();
  if (watch_connected_.exchange(ok) == ok) return;
  if (ok) {
    Log("INFO", "store watch connected");
  } else {
    Log("WARNING", absl::StrCat("store watch lost: ", status.message(),
                                " (serving the last good copy; retrying)"));
  }
}

void Replica::Log(absl::string_view level, absl::string_view message) const {
  if (options_.log) options_.log(level, message);
}

}  // namespace sessiontoken::engine
