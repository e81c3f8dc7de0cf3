#include "server/keyring/lifecycle.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/hmac.h"
#include "server/crypto/secret_bytes.h"

namespace sessiontoken::keyring {
namespace {

absl::StatusOr<const Key*> FindOrError(const Keyring& k, uint32_t id) {
  const Key* key = k.Find(id);
  if (key == nullptr) {
    return absl::NotFoundError(absl::StrCat("key_id: keyring ", k.name(), " has no key ", id));
  }
  return key;
}

absl::Status Illegal(const Key& k, absl::string_view what, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat("key_id: cannot ", what, " key ", k.id(), " (",
                                                    v1::KeyState_Name(k.state()), "): ", why));
}

// The keys of `k` with key `id` replaced by `replacement` (absent: `replacement` added);
// when the replacement is PRIMARY, the old primary becomes ACTIVE.
Keyring::Keys Replace(const Keyring& k, uint32_t id, std::shared_ptr<const Key> replacement,
                      absl::Time now) {
  const bool new_primary = replacement->state() == v1::PRIMARY;
  Keyring::Keys keys;
  keys.reserve(k.keys().size() + 1);
  if (k.Find(id) == nullptr) keys.push_back(replacement);
  for (const auto& key : k.keys()) {
    if (key->id() == id) {
      keys.push_back(replacement);
    } else if (new_primary && key->state() == v1::PRIMARY) {
      keys.push_back(key->WithState(v1::ACTIVE, now));
    } else {
      keys.push_back(key);
    }
  }
  return keys;
}

// Moves key `id` to `to` when its state is one of `from`; else explains why not.
absl::StatusOr<KeyringPtr> Transition(const Keyring& k, uint32_t id, absl::Time now,
                                      absl::string_view what, std::initializer_list<KeyState> from,
                                      KeyState to, absl::string_view why) {
  absl::StatusOr<const Key*> key = FindOrError(k, id);
  if (!key.ok()) return key.status();
  const KeyState s = (*key)->state();
  if (to == v1::PRIMARY && s == v1::PRIMARY) {
    return Illegal(**key, what, "it is already the primary key");
  }
  if (std::find(from.begin(), from.end(), s) == from.end()) return Illegal(**key, what, why);
  return k.Next(Replace(k, id, (*key)->WithState(to, now), now));
}

}  // namespace

absl::StatusOr<KeyringPtr> Rotate(const Keyring& k, absl::Time now, bool promote,
                                  uint32_t* new_key_id, Algorithm algorithm) {
  if (algorithm == v1::ALGORITHM_UNSPECIFIED) algorithm = k.primary().algorithm();
  const uint32_t id = k.NewKeyId();
  absl::StatusOr<std::shared_ptr<const Key>> fresh =
      Key::Generate(id, algorithm, promote ? v1::PRIMARY : v1::STAGED, now);
  if (!fresh.ok()) return fresh.status();
  if (new_key_id != nullptr) *new_key_id = id;
  return k.Next(Replace(k, id, *std::move(fresh), now));
}

absl::StatusOr<KeyringPtr> Promote(const Keyring& k, uint32_t key_id, absl::Time now) {
  return Transition(k, key_id, now, "promote", {v1::STAGED, v1::ACTIVE}, v1::PRIMARY,
                    "only STAGED or ACTIVE keys can become primary");
}

absl::StatusOr<KeyringPtr> Disable(const Keyring& k, uint32_t key_id, absl::Time now) {
  const Key* key = k.Find(key_id);
  if (key != nullptr && key->state() == v1::PRIMARY) {
    return Illegal(*key, "disable", "promote another key (or rotate) first");
  }
  return Transition(k, key_id, now, "disable", {v1::STAGED, v1::ACTIVE}, v1::DISABLED,
                    "only STAGED or ACTIVE keys can be disabled");
}

absl::StatusOr<KeyringPtr> Enable(const Keyring& k, uint32_t key_id, absl::Time now) {
  return Transition(k, key_id, now, "enable", {v1::DISABLED}, v1::ACTIVE,
                    "only DISABLED keys can be enabled");
}

absl::StatusOr<KeyringPtr> Destroy(const Keyring& k, uint32_t key_id, absl::Time now) {
  return Transition(k, key_id, now, "destroy", {v1::DISABLED}, v1::DESTROYED,
                    "a key must be DISABLED before it is destroyed");
}

absl::StatusOr<KeyringPtr> Import(const Keyring& k, Algorithm algorithm, absl::string_view secret,
                                  KeyState state, absl::Time now, uint32_t* new_key_id) {
  if (state == v1::KEY_STATE_UNSPECIFIED) state = v1::ACTIVE;
  if (state != v1::ACTIVE && state != v1::STAGED && state != v1::PRIMARY) {
    return absl::InvalidArgumentError("state: an imported key must be ACTIVE, STAGED or PRIMARY");
  }
  if (algorithm == v1::ALGORITHM_UNSPECIFIED) {
    return absl::InvalidArgumentError("algorithm: required");
  }
  if (secret.empty()) return absl::InvalidArgumentError("secret: required");
  if (algorithm == v1::HMAC_SHA256 && secret.size() < 16) {
    return absl::InvalidArgumentError("secret: a native key needs at least 16 bytes");
  }
  for (const auto& key : k.keys()) {
    if (key->algorithm() == algorithm && !key->material().empty() &&
        crypto::ConstantTimeEquals(key->material(), secret)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "secret: keyring ", k.name(), " already holds this secret as key ", key->id()));
    }
  }
  const uint32_t id = k.NewKeyId();
  absl::StatusOr<std::shared_ptr<const Key>> key =
      Key::New({id, algorithm, state, now, now}, crypto::SecretBytes::CopyFrom(secret));
  if (!key.ok()) return key.status();
  if (new_key_id != nullptr) *new_key_id = id;
  return k.Next(Replace(k, id, *std::move(key), now));
}

}  // namespace sessiontoken::keyring
