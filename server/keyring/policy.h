// Policy: a keyring's rotation schedule and token limits (v1::KeyringPolicy): validation,
// the longest TTL it allows, and the transitions it makes due at a given time, tombstone
// pruning included. Pure functions of a snapshot and a time; the scheduler
// (server/engine/scheduler.h) applies them.
#ifndef SESSIONTOKEN_SERVER_KEYRING_POLICY_H_
#define SESSIONTOKEN_SERVER_KEYRING_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/keyring/lifecycle.h"
#include "sessiontoken/v1/keyring.pb.h"

namespace sessiontoken::keyring {

// How long a DESTROYED key's tombstone stays when the policy's tombstone_retention is 0.
// Every token of a pruned key has been rejected (KEY_DISABLED) for at least this long
// (destroy_after + this long when the policy destroyed it), and the audit log keeps the
// key's history: the tombstone only serves `keys list` and the KEY_DISABLED answer.
inline constexpr absl::Duration kDefaultTombstoneRetention = absl::Hours(24 * 30);
// Most tombstones one keyring keeps, whatever the retention: beyond it the oldest are pruned
// early, so a keyring rotated every minute stays small too (about 25 bytes each when stored).
inline constexpr size_t kMaxTombstones = 1000;

// The policy's tombstone retention (kDefaultTombstoneRetention when it sets none).
absl::Duration TombstoneRetention(const v1::KeyringPolicy& policy);

// Checks a policy: whole non-negative seconds; stage lead time below the rotation period;
// max_token_ttl not above `server_max_ttl`; the effective max token TTL (the policy's, or
// `server_max_ttl` when 0) not above the verify window when that is set, so that no token
// outlives the key that signed it.
absl::Status ValidatePolicy(const v1::KeyringPolicy& policy, absl::Duration server_max_ttl);

// seal_payloads needs a native primary key: the Flask format cannot seal. FailedPrecondition
// naming the field when `policy` seals and `primary` is a Flask algorithm.
absl::Status CheckSealable(const v1::KeyringPolicy& policy, Algorithm primary,
                           absl::string_view keyring);

// The longest TTL Sign accepts on a keyring: the policy's max_token_ttl, capped by
// `server_max` (which applies alone when the policy sets none).
absl::Duration MaxTtl(const v1::KeyringPolicy& policy, absl::Duration server_max);

// `k` with `policy` (validated by ValidatePolicy and CheckSealable), revision + 1.
absl::StatusOr<KeyringPtr> WithPolicy(const Keyring& k, const v1::KeyringPolicy& policy,
                                      absl::Duration server_max_ttl);

// One transition the policy made due.
struct Transition {
  std::string operation;  // "stage", "rotate", "promote", "disable", "destroy", "prune"
  uint32_t key_id = 0;
};

// A transition the policy has scheduled, and when it becomes due.
struct ScheduledTransition {
  std::string operation;  // "promote", "stage" (or "rotate" when the lead time is 0),
                          // "disable", "destroy"
  uint32_t key_id = 0;    // the key it acts on (for "stage"/"rotate": the current primary)
  absl::Time due;         // may be in the past: overdue (the scheduler has not run it yet)
};

// Every transition `k`'s policy schedules for its keys as they are now, one at most per
// key (what ApplyDue would apply once `due` is reached), in key order.
std::vector<ScheduledTransition> Scheduled(const Keyring& k);

// Applies every transition the policy makes due at `now`, in order: promote a staged key
// after the lead time; stage (or rotate, when the lead time is 0) when the primary is older
// than the rotation period minus the lead time and no key is staged; disable ACTIVE keys
// after the verify window; destroy DISABLED keys after destroy-after; last, prune (remove)
// DESTROYED keys destroyed at least the tombstone retention ago, and the oldest tombstones
// beyond kMaxTombstones. Only DESTROYED keys are ever pruned, and pruning applies to every
// keyring, with or without a rotation schedule. The result is one change (revision + 1), or
// null when nothing is due; *applied lists what happened (one "prune" per removed key).
//
// A pruned id may be drawn again by a later key (Keyring::NewKeyId): harmless, as the old
// key's tokens then fail that key's MAC (BAD_SIGNATURE), and they had been rejected for at
// least the retention already.
//
// `stage_only` (replicas sharing a store): a key is never created and promoted in one
// change, so that a promotion only ever names a key other replicas can already have; a
// lead time of 0 then stages, and a later pass promotes.
absl::StatusOr<KeyringPtr> ApplyDue(const Keyring& k, absl::Time now,
                                    std::vector<Transition>* applied, bool stage_only = false);

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_SERVER_KEYRING_POLICY_H_
