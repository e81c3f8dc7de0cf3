#include "server/format/key_macs.h"

#include <utility>

#include "server/token/flask.h"

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
    out.has_flask_keys_ |= flask;
    out.by_id_[key->id()] = out.macs_.size();
    out.macs_.push_back({key.get(), *std::move(mac)});
  }
  return out;
}

const KeyMac* KeyMacs::Find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &macs_[it->second];
}

}  // namespace sessiontoken::format
