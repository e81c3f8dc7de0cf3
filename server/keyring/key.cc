#include "server/keyring/key.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/random.h"
#include "server/token/flask.h"

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
  std::shared_ptr<Material> m;
  if (!destroyed) {
    // Native keys are generated (32 bytes) or imported; Flask secrets are whatever the
    // application used, so any non-empty secret is accepted for them.
    if (metadata.algorithm == v1::HMAC_SHA256 && material.size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", metadata.id, ": material shorter than 16 bytes"));
    }
    m = std::make_shared<Material>();
    absl::StatusOr<std::unique_ptr<crypto::Hmac>> mac =
        metadata.algorithm == v1::HMAC_SHA1_FLASK
            ? token::DeriveFlaskSigner(material.view(), token::kFlaskDefaultSalt)
            : crypto::Hmac::New(crypto::HashFunction::kSha256, material.view());
    if (!mac.ok()) return mac.status();
    m->mac = *std::move(mac);
    m->bytes = std::move(material);
  }
  return std::shared_ptr<const Key>(new Key(metadata, std::move(m)));
}

absl::StatusOr<std::shared_ptr<const Key>> Key::Generate(uint32_t id, Algorithm algorithm,
                                                         KeyState state, absl::Time now) {
  KeyMetadata md{id, algorithm, state, now, now};
  return New(md, crypto::RandomSecret(kKeyMaterialSize));
}

absl::StatusOr<std::unique_ptr<crypto::Hmac>> Key::FlaskSigner(absl::string_view salt) const {
  if (material_ == nullptr) return absl::FailedPreconditionError("key destroyed");
  return token::DeriveFlaskSigner(material_->bytes.view(), salt);
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
