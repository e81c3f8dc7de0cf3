// Scheduler: applies the transitions every keyring's policy makes due (Engine::ApplyDue),
// once per Tick, or every `interval` on its own thread while a Scheduler object lives.
#ifndef SESSIONTOKEN_SERVER_ENGINE_SCHEDULER_H_
#define SESSIONTOKEN_SERVER_ENGINE_SCHEDULER_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/engine/engine.h"

namespace sessiontoken::engine {

// One pass over every keyring. Returns the number of transitions applied; a keyring whose
// change fails is audited by the engine and skipped (the next pass tries again). Each pass
// also prunes revocation entries past their drop time (Engine::PruneRevocations).
int Tick(Engine& engine);

class Scheduler {
 public:
  // Runs Tick every `interval` (real time) until destruction; `on_applied` (optional) hears
  // the count of every pass that applied something. interval <= 0 runs nothing.
  Scheduler(Engine* engine, absl::Duration interval, std::function<void(int)> on_applied);
  // Stops and joins the thread (a pass in progress completes first).
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_SCHEDULER_H_
