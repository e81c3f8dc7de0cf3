#include "server/engine/scheduler.h"

#include <utility>

namespace sessiontoken::engine {

int Tick(Engine& engine) {
  int applied = 0;
  for (const auto& kr : engine.ListKeyrings()) {
    absl::StatusOr<std::vector<keyring::Transition>> r = engine.ApplyDue(kr->name());
    if (r.ok()) applied += static_cast<int>(r->size());
    (void)engine.PruneRevocations(kr->name());  // a failure retries at the next tick
  }
  return applied;
}

Scheduler::Scheduler(Engine* engine, absl::Duration interval, std::function<void(int)> on_applied) {
  if (interval <= absl::ZeroDuration()) return;
  thread_ = std::thread([this, engine, interval, on_applied = std::move(on_applied)] {
    while (!stop_.WaitForNotificationWithTimeout(interval)) {
      const int n = Tick(*engine);
      if (n > 0 && on_applied) on_applied(n);
    }
  });
}

Scheduler::~Scheduler() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sessiontoken::engine
