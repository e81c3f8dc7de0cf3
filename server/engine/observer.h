// EngineObserver: what the engine reports from its hot path (every Sign and Verify result,
// after the keyring was found) to whoever counts them (server/metrics). Called on the
// request's own thread: implementations must be cheap and lock-free on their common path.
// They receive metadata only; a VerifyResult's payload must not be kept or exported.
#ifndef SESSIONTOKEN_SERVER_ENGINE_OBSERVER_H_
#define SESSIONTOKEN_SERVER_ENGINE_OBSERVER_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/format/result.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::engine {

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // A token of keyring `snapshot` (named `keyring`) was verified at `now` with `result`.
  // Called only for keyrings that exist, so label values stay bounded by the keyrings.
  virtual void OnVerify(absl::string_view keyring, const keyring::Keyring& snapshot,
                        const format::VerifyResult& result, absl::Time now) = 0;
  // A token was signed with key `key_id` of `snapshot`.
  virtual void OnSign(absl::string_view keyring, const keyring::Keyring& snapshot, uint32_t key_id,
                      absl::Time now) = 0;
};

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_OBSERVER_H_
