#include "server/format/key_macs.h"

#include <utility>

#include "server/token/flask.h"
#include "server/token/native.h"

namespace sessiontoken::format {

absl::StatusOr<KeyMacs> KeyMacs::New(const keyring::Keyring& keyring) {
  KeyMacs out;
  out.macs_.reserve(keyring.keys().size());
  for (const auto& key : keyring.keys()) {
    if (key->material().empty()) continue;  // destroyed
    const bool flask = key->algorithm() == v1::HMAC_SHA1_FLASK;
    absl::StatusOr<std::unique_ptr<crypto::Hmac>> mac =
        flask ? token::DeriveFlaskSigner(key->material(), token::kFlaskDefaultSalt)
              : crypto::Hmac::New(crypto::HashFunction::kSha256, key->material());
    if (!mac.ok()) return mac.status();
    std::unique_ptr<crypto::Aes256Gcm> seal;
    if (!flask) {
      absl::StatusOr<std::unique_ptr<crypto::Aes256Gcm>> s = token::DeriveSealKey(key->material());
      if (!s.ok()) return s.status();
      seal = *std::move(s);
    }
    out.has_flask_keys_ |= flask;
    out.by_id_[key->id()] = out.macs_.size();
    out.macs_.push_back({key.get(), *std::move(mac), std::move(seal)});
  }
  return out;
}

const std::vector<std::unique_ptr<crypto::Hmac>>* KeyMacs::SignersFor(
    absl::string_view salt) const {
  {
    absl::ReaderMutexLock lock(&salts_->mu);
    auto it = salts_->by_salt.find(salt);
    if (it != salts_->by_salt.end()) return &it->second;
    if (salts_->by_salt.size() >= kMaxCachedSalts) return nullptr;
  }
  std::vector<std::unique_ptr<crypto::Hmac>> signers(macs_.size());
  for (size_t i = 0; i < macs_.size(); ++i) {
    if (macs_[i].key->algorithm() != v1::HMAC_SHA1_FLASK) continue;
    absl::StatusOr<std::unique_ptr<crypto::Hmac>> d =
        token::DeriveFlaskSigner(macs_[i].key->material(), salt);
    if (d.ok()) signers[i] = *std::move(d);
  }
  absl::MutexLock lock(&salts_->mu);
  if (salts_->by_salt.size() >= kMaxCachedSalts && !salts_->by_salt.contains(salt)) {
    return nullptr;
  }
  // Another thread may have won the race: keep its signers (pointers already handed out).
  return &salts_->by_salt.try_emplace(std::string(salt), std::move(signers)).first->second;
}

const crypto::Hmac* KeyMacs::FlaskSigner(const KeyMac& km, absl::string_view salt,
                                         std::unique_ptr<crypto::Hmac>* scratch) const {
  if (salt == token::kFlaskDefaultSalt) return km.mac.get();
  const size_t index = static_cast<size_t>(&km - macs_.data());
  if (const auto* signers = SignersFor(salt); signers != nullptr) {
    return (*signers)[index].get();
  }
  absl::StatusOr<std::unique_ptr<crypto::Hmac>> d =
      token::DeriveFlaskSigner(km.key->material(), salt);
  if (!d.ok()) return nullptr;
  *scratch = *std::move(d);
  return scratch->get();
}

const KeyMac* KeyMacs::Find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &macs_[it->second];
}

}  // namespace sessiontoken::format
