// Clock: the only source of token and policy time (issued-at, expiry, scheduled
// transitions), injectable so that tests of expiry and rotation are instant and
// deterministic (tests/testing/fake_clock.h). Real-time waits, such as how long an admin
// change may wait for a lock, use absl::Now() and say so where they are taken.
#ifndef SESSIONTOKEN_SERVER_KEYRING_CLOCK_H_
#define SESSIONTOKEN_SERVER_KEYRING_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sessiontoken::keyring {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // The process-wide wall clock.
  static const Clock& Real();
};

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_SERVER_KEYRING_CLOCK_H_
