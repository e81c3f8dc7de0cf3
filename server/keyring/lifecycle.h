// Lifecycle: the key state machine (Tink's KeysetManager). Each operation takes a snapshot
// and returns the next one (revision + 1), or FailedPrecondition / NotFound /
// InvalidArgument naming the illegal move; the given snapshot never changes.
//
//   STAGED --promote--> PRIMARY --(another key promoted)--> ACTIVE --disable--> DISABLED
//   STAGED/ACTIVE --disable--> DISABLED --enable--> ACTIVE;  DISABLED --destroy--> DESTROYED
#ifndef SESSIONTOKEN_SERVER_KEYRING_LIFECYCLE_H_
#define SESSIONTOKEN_SERVER_KEYRING_LIFECYCLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::keyring {

using KeyringPtr = std::shared_ptr<const Keyring>;

// Stages a new random key (algorithm: that of the primary unless given). With `promote`,
// it becomes PRIMARY at once and the old primary ACTIVE. *new_key_id gets the new id.
absl::StatusOr<KeyringPtr> Rotate(const Keyring& k, absl::Time now, bool promote,
                                  uint32_t* new_key_id,
                                  Algorithm algorithm = v1::ALGORITHM_UNSPECIFIED);
// STAGED or ACTIVE -> PRIMARY; the former primary becomes ACTIVE.
absl::StatusOr<KeyringPtr> Promote(const Keyring& k, uint32_t key_id, absl::Time now);
// STAGED or ACTIVE -> DISABLED. The primary cannot be disabled.
absl::StatusOr<KeyringPtr> Disable(const Keyring& k, uint32_t key_id, absl::Time now);
// DISABLED -> ACTIVE.
absl::StatusOr<KeyringPtr> Enable(const Keyring& k, uint32_t key_id, absl::Time now);
// DISABLED -> DESTROYED: the material is dropped (wiped when no snapshot uses it any more);
// a tombstone with id and times remains.
absl::StatusOr<KeyringPtr> Destroy(const Keyring& k, uint32_t key_id, absl::Time now);
// Adds an existing secret as a key in `state` (ACTIVE, STAGED or PRIMARY; unspecified =
// ACTIVE). AlreadyExists when the keyring holds the same secret for the same algorithm.
absl::StatusOr<KeyringPtr> Import(const Keyring& k, Algorithm algorithm, absl::string_view secret,
                                  KeyState state, absl::Time now, uint32_t* new_key_id);

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_SERVER_KEYRING_LIFECYCLE_H_
