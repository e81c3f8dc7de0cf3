// Keyring: an immutable snapshot of a named set of keys. Readers (Sign/Verify) use a
// snapshot without locks; every change (Rotate...) returns a new snapshot with revision + 1,
// which the engine persists and then publishes.
#ifndef SESSIONTOKEN_SERVER_KEYRING_KEYRING_H_
#define SESSIONTOKEN_SERVER_KEYRING_KEYRING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/keyring/key.h"
#include "sessiontoken/v1/keyring.pb.h"

namespace sessiontoken::keyring {

enum class VerifyStatus {
  kValid,
  kMalformed,
  kUnknownKey,
  kBadSignature,
  kExpired,
  kNotYetValid,
  kKeyDisabled,
  kWrongAudience,
};
absl::string_view VerifyStatusName(VerifyStatus s);

struct SignResult {
  std::string token;
  uint32_t key_id = 0;
  int64_t issued_at = 0;   // Unix seconds
  int64_t expires_at = 0;  // Unix seconds
};

struct VerifyResult {
  VerifyStatus status = VerifyStatus::kMalformed;
  uint32_t key_id = 0;    // set when the token parsed
  int64_t issued_at = 0;  // set when the MAC checked out
  int64_t expires_at = 0;
  std::string payload;  // set only when status == kValid
  bool refresh_recommended = false;
};

struct VerifyOptions {
  // How far in the future a token's issued-at may be (clock skew between replicas).
  absl::Duration max_clock_skew = absl::Seconds(30);
  // Formats without an expiry (Flask): tokens older than this are EXPIRED.
  absl::Duration max_age = absl::Hours(24 * 31);
};

// Keyring names: 1-63 characters of [a-z0-9_-], starting with a letter or digit.
absl::Status ValidateKeyringName(absl::string_view name);

class Keyring {
 public:
  // Builds a snapshot and checks its invariants: valid name, unique non-zero key ids,
  // exactly one PRIMARY key.
  static absl::StatusOr<std::shared_ptr<const Keyring>> New(
      std::string name, uint64_t revision, absl::Time created_at,
      std::vector<std::shared_ptr<const Key>> keys, v1::KeyringPolicy policy = {});
  // A new keyring (revision 1) with one fresh PRIMARY key.
  static absl::StatusOr<std::shared_ptr<const Keyring>> Create(
      std::string name, absl::Time now, v1::KeyringPolicy policy = {},
      Algorithm algorithm = v1::HMAC_SHA256);

  const std::string& name() const { return name_; }
  uint64_t revision() const { return revision_; }
  absl::Time created_at() const { return created_at_; }
  // All keys, newest first (by creation time, then id).
  const std::vector<std::shared_ptr<const Key>>& keys() const { return keys_; }
  const Key& primary() const { return *primary_; }
  // O(1) lookup by id; null when absent.
  const Key* Find(uint32_t id) const;

  // Signs with the primary key. Preconditions checked: payload <= token::kMaxPayloadSize,
  // audience <= token::kMaxAudienceSize, ttl >= 1s.
  absl::StatusOr<SignResult> Sign(absl::string_view payload, absl::string_view audience,
                                  absl::Time now, absl::Duration ttl) const;
  // Verifies a token of any format this keyring's keys support. Never fails: every problem
  // is a VerifyStatus.
  VerifyResult Verify(absl::string_view token, absl::string_view audience, absl::Time now,
                      const VerifyOptions& options = {}) const;

  // --- Lifecycle. Each returns a new snapshot (revision + 1) or FailedPrecondition /
  // NotFound / InvalidArgument naming the illegal move; the receiver never changes.

  // Stages a new random key (algorithm: that of the primary unless given). With `promote`,
  // it becomes PRIMARY at once and the old primary ACTIVE. *new_key_id gets the new id.
  absl::StatusOr<std::shared_ptr<const Keyring>> Rotate(
      absl::Time now, bool promote, uint32_t* new_key_id,
      Algorithm algorithm = v1::ALGORITHM_UNSPECIFIED) const;
  // STAGED or ACTIVE -> PRIMARY; the former primary becomes ACTIVE.
  absl::StatusOr<std::shared_ptr<const Keyring>> Promote(uint32_t key_id, absl::Time now) const;
  // STAGED or ACTIVE -> DISABLED. The primary cannot be disabled.
  absl::StatusOr<std::shared_ptr<const Keyring>> Disable(uint32_t key_id, absl::Time now) const;
  // DISABLED -> ACTIVE.
  absl::StatusOr<std::shared_ptr<const Keyring>> Enable(uint32_t key_id, absl::Time now) const;
  // DISABLED -> DESTROYED: the material is dropped (wiped when no snapshot uses it any
  // more); a tombstone with id and times remains.
  absl::StatusOr<std::shared_ptr<const Keyring>> Destroy(uint32_t key_id, absl::Time now) const;
  // Adds an existing secret as a key in `state` (ACTIVE, STAGED or PRIMARY).
  absl::StatusOr<std::shared_ptr<const Keyring>> Import(Algorithm algorithm,
                                                        absl::string_view secret, KeyState state,
                                                        absl::Time now, uint32_t* new_key_id) const;
  // Replaces the policy (validated by ValidatePolicy).
  absl::StatusOr<std::shared_ptr<const Keyring>> WithPolicy(const v1::KeyringPolicy& policy,
                                                            absl::Duration server_max_ttl) const;

  // One transition the scheduler applied.
  struct Transition {
    std::string operation;  // "rotate", "promote", "disable", "destroy"
    uint32_t key_id = 0;
  };
  // Applies every transition the policy makes due at `now`: promote a staged key after the
  // lead time, stage/rotate when the primary is older than the rotation period, disable
  // ACTIVE keys after the verify window, destroy DISABLED keys after destroy-after.
  // Returns null when nothing is due.
  absl::StatusOr<std::shared_ptr<const Keyring>> ApplyDue(absl::Time now,
                                                          std::vector<Transition>* applied) const;

  const v1::KeyringPolicy& policy() const { return policy_; }
  // The longest TTL Sign accepts: the policy's max_token_ttl, capped by `server_max`.
  absl::Duration MaxTtl(absl::Duration server_max) const;

  // Stored form, including key material: the caller must seal it and wipe it.
  void ToStored(v1::StoredKeyring* out) const;
  // Inverse of ToStored. Wipes the material fields of *stored as it consumes them.
  static absl::StatusOr<std::shared_ptr<const Keyring>> FromStored(v1::StoredKeyring* stored);

 private:
  Keyring() = default;
  // A copy of this keyring with `keys` and revision + 1.
  absl::StatusOr<std::shared_ptr<const Keyring>> Next(
      std::vector<std::shared_ptr<const Key>> keys) const;
  VerifyResult VerifyNative(absl::string_view token, absl::string_view audience, absl::Time now,
                            const VerifyOptions& options) const;
  VerifyResult VerifyFlask(absl::string_view token, absl::string_view audience, absl::Time now,
                           const VerifyOptions& options) const;
  // The keys with `id` replaced by `replacement` (and, when it becomes PRIMARY, the old
  // primary demoted to ACTIVE).
  std::vector<std::shared_ptr<const Key>> Replace(uint32_t id,
                                                  std::shared_ptr<const Key> replacement,
                                                  absl::Time now) const;
  absl::StatusOr<const Key*> FindOrError(uint32_t id) const;
  uint32_t NewKeyId() const;

  std::string name_;
  uint64_t revision_ = 0;
  absl::Time created_at_;
  std::vector<std::shared_ptr<const Key>> keys_;
  absl::flat_hash_map<uint32_t, const Key*> by_id_;
  const Key* primary_ = nullptr;
  v1::KeyringPolicy policy_;
};

// Checks a policy: whole non-negative seconds; stage lead time below the rotation period;
// the effective max token TTL (the policy's, or `server_max_ttl` when 0) not above the
// verify window when that is set, so that no token outlives the key that signed it.
absl::Status ValidatePolicy(const v1::KeyringPolicy& policy, absl::Duration server_max_ttl);

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_SERVER_KEYRING_KEYRING_H_
