// RecordingListener: a WatchListener for tests that records every callback; the Wait*
// methods block, bounded, until something arrived.
#ifndef SESSIONTOKEN_TESTS_TESTING_RECORDING_LISTENER_H_
#define SESSIONTOKEN_TESTS_TESTING_RECORDING_LISTENER_H_

#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/replicated_store.h"

namespace sessiontoken::testing {

constexpr absl::Duration kTimeout = absl::Seconds(10);  // bound on any wait

// Records what a watch delivers; Wait* block (bounded) until a condition holds.
class RecordingListener : public store::WatchListener {
 public:
  void OnEvents(int64_t revision, std::vector<store::KeyringEvent> events) override {
    absl::MutexLock lock(&mu_);
    for (store::KeyringEvent& e : events) {
      seen_at_.push_back(absl::Now());
      revisions_.push_back(revision);
      events_.push_back(std::move(e));
    }
  }
  void OnProgress(int64_t revision) override {
    absl::MutexLock lock(&mu_);
    progress_ = revision;
  }
  void OnConnection(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    connection_.push_back(status);
  }
  std::vector<absl::Status> connection() {
    absl::MutexLock lock(&mu_);
    return connection_;
  }
  void OnResyncNeeded(int64_t compact_revision) override {
    absl::MutexLock lock(&mu_);
    resync_ = compact_revision;
  }
  bool WaitForEvents(size_t n) {
    absl::MutexLock lock(&mu_);
    auto cond = [this, n] {
      mu_.AssertHeld();
      return events_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&cond), kTimeout);
  }
  // Until `n` connection changes arrived (the first is the watch's first stream).
  bool WaitForConnectionChanges(size_t n) {
    absl::MutexLock lock(&mu_);
    auto cond = [this, n] {
      mu_.AssertHeld();
      return connection_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&cond), kTimeout);
  }
  int64_t WaitForResync() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &RecordingListener::HasResync), kTimeout);
    return resync_;
  }
  int64_t WaitForProgress() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &RecordingListener::HasProgress), kTimeout);
    return progress_;
  }
  std::vector<store::KeyringEvent> events() {
    absl::MutexLock lock(&mu_);
    std::vector<store::KeyringEvent> copy;
    for (const store::KeyringEvent& e : events_) copy.push_back(e);
    return copy;
  }
  absl::Time seen_at(size_t i) {
    absl::MutexLock lock(&mu_);
    return seen_at_[i];
  }

 private:
  bool HasResync() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return resync_ != 0; }
  bool HasProgress() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return progress_ != 0; }
  absl::Mutex mu_;
  std::vector<store::KeyringEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> revisions_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> seen_at_ ABSL_GUARDED_BY(mu_);
  int64_t resync_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t progress_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sessiontoken::testing

#endif  // SESSIONTOKEN_TESTS_TESTING_RECORDING_LISTENER_H_
