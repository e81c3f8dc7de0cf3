// Engine::WriterGuard: how admin changes (engine.cc, engine_kek.cc, engine_revoke.cc) take their
// turn. Private to the engine's own files.
#ifndef SESSIONTOKEN_SERVER_ENGINE_WRITER_GUARD_H_
#define SESSIONTOKEN_SERVER_ENGINE_WRITER_GUARD_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/engine.h"

namespace sessiontoken::engine {

// Admin changes run one at a time: a writer first waits (bounded by its deadline, real
// time) for `busy_` to clear, then holds write_mu_ (uncontended) while it commits.
class Engine::WriterGuard {
 public:
  WriterGuard(Engine* e, absl::Time deadline) : e_(e) {
    absl::MutexLock l(&e->busy_mu_);
    auto free = [](bool* busy) { return !*busy; };
    ok_ = e->busy_mu_.AwaitWithDeadline(absl::Condition(+free, &e->busy_), deadline);
    if (ok_) e->busy_ = true;
  }
  ~WriterGuard() {
    if (!ok_) return;
    absl::MutexLock l(&e_->busy_mu_);
    e_->busy_ = false;
  }
  absl::Status status() const {
    if (ok_) return absl::OkStatus();
    const ReplicaState* replica = e_->replica_state_.load();
    return absl::DeadlineExceededError(absl::StrCat(
        "another admin change (or the scheduler) is still in progress; this one did not "
        "start before its deadline and changed nothing",
        replica != nullptr && replica->MayBeBehind()
            ? ": this replica has lost contact with the store (etcd), and writes wait for "
              "it; see `sessiontoken status`"
            : ""));
  }

 private:
  Engine* e_;
  bool ok_ = false;
};

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_WRITER_GUARD_H_
