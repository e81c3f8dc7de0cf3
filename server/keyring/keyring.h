// Keyring: an immutable snapshot of a named set of keys (Tink's KeysetHandle). Readers use a
// snapshot without locks; every change (server/keyring/lifecycle.h, policy.h) builds a new
// snapshot with revision + 1, which the engine persists and then publishes. The snapshot
// knows nothing of token formats (server/format/) or of its stored form (stored_form.h).
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

// Keyring names: 1-63 characters of [a-z0-9_-], starting with a letter or digit.
absl::Status ValidateKeyringName(absl::string_view name);

class Keyring {
 public:
  using Keys = std::vector<std::shared_ptr<const Key>>;

  // Builds a snapshot and checks its invariants: valid name, unique non-zero key ids,
  // exactly one PRIMARY key. The policy is taken as given (see ValidatePolicy).
  static absl::StatusOr<std::shared_ptr<const Keyring>> New(std::string name, uint64_t revision,
                                                            absl::Time created_at, Keys keys,
                                                            v1::KeyringPolicy policy = {});
  // A new keyring (revision 1) with one fresh PRIMARY key.
  static absl::StatusOr<std::shared_ptr<const Keyring>> Create(
      std::string name, absl::Time now, v1::KeyringPolicy policy = {},
      Algorithm algorithm = v1::HMAC_SHA256);

  // The next revision of this keyring: the same name and creation time with `keys` (and
  // `policy`), invariants checked as in New. The receiver never changes.
  absl::StatusOr<std::shared_ptr<const Keyring>> Next(Keys keys) const;
  absl::StatusOr<std::shared_ptr<const Keyring>> Next(Keys keys, v1::KeyringPolicy policy) const;

  const std::string& name() const { return name_; }
  uint64_t revision() const { return revision_; }
  absl::Time created_at() const { return created_at_; }
  // All keys, newest first (by creation time; keys created in the same instant keep the
  // order they were given in).
  const Keys& keys() const { return keys_; }
  const Key& primary() const { return *primary_; }
  // O(1) lookup by id; null when absent.
  const Key* Find(uint32_t id) const;
  // A random non-zero id that no key of this keyring has.
  uint32_t NewKeyId() const;
  const v1::KeyringPolicy& policy() const { return policy_; }

 private:
  Keyring() = default;

  std::string name_;
  uint64_t revision_ = 0;
  absl::Time created_at_;
  Keys keys_;
  absl::flat_hash_map<uint32_t, const Key*> by_id_;
  const Key* primary_ = nullptr;
  v1::KeyringPolicy policy_;
};

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_SERVER_KEYRING_KEYRING_H_
