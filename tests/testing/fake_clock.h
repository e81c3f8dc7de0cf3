// FakeClock: a manually advanced keyring::Clock for tests. Thread-safe.
#ifndef SESSIONTOKEN_TESTS_TESTING_FAKE_CLOCK_H_
#define SESSIONTOKEN_TESTS_TESTING_FAKE_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "server/keyring/clock.h"

namespace sessiontoken::keyring {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start) : now_ns_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(now_ns_.load()); }
  void Advance(absl::Duration d) { now_ns_ += absl::ToInt64Nanoseconds(d); }
  void Set(absl::Time t) { now_ns_ = absl::ToUnixNanos(t); }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_TESTS_TESTING_FAKE_CLOCK_H_
