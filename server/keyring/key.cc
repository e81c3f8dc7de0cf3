#include "server/keyring/key.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/random.h"

namespace sessiontoken::keyring {

absl::StatusOr<std::shared_ptr<const Key>> Key::New(KeyMetadata metadata,
                                                    crypto::SecretBytes material) {
  if (metadata.id == 0) return absl::InvalidArgumentError("key id 0 is reserved");
  if (metadata.algorithm != v1::HMAC_SHA256 && metadata.algorithm != v1::HMAC_SHA1_FLASK) {
    return absl::InvalidArgumentError(
        absl::StrCat("key ", metadata.id, ": unsupported algorithm ", metadata.algorithm));
  }
  if (!v1::KeyState_IsValid(metadata.state) || metadata.state == v1::KEY_STATE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("key ", metadata.id, ": invalid state"));
  }
  const bool destroyed = metadata.state == v1::DESTROYED;
  if (destroyed != material.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key ", metadata.id,
        destroyed ? ": destroyed key still has material" : ": key material is missing"));
  }
  // Native keys are generated (32 bytes) or imported; Flask secrets are whatever the
  // application used, so any non-empty secret is accepted for them.
  if (metadata.algorithm == v1::HMAC_SHA256 && !destroyed && material.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("key ", metadata.id, ": material shorter than 16 bytes"));
  }
  std::shared_ptr<const Material> m;
  if (!destroyed) m = std::make_shared<const Material>(std::move(material));
  return std::shared_ptr<const Key>(new Key(metadata, std::move(m)));
}

absl::StatusOr<std::shared_ptr<const Key>> Key::Generate(uint32_t id, Algorithm algorithm,
                                                         KeyState state, absl::Time now) {
  KeyMetadata md{id, algorithm, state, now, now};
  return New(md, crypto::RandomSecret(kKeyMaterialSize));
}

bool Key::CanVerify() const {
  return metadata_.state == v1::STAGED || metadata_.state == v1::PRIMARY ||
         metadata_.state == v1::ACTIVE;
}

std::shared_ptr<const Key> Key::WithState(KeyState state, absl::Time now) const {
  KeyMetadata md = metadata_;
  md.state = state;
  md.state_changed_at = now;
  return std::shared_ptr<const Key>(new Key(md, state == v1::DESTROYED ? nullptr : material_));
}

}  // namespace sessiontoken::keyring
