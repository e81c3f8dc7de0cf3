#include "server/keyring/keyring.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/random.h"
#include "server/crypto/secret_bytes.h"
#include "server/token/native.h"

namespace sessiontoken::keyring {

absl::string_view VerifyStatusName(VerifyStatus s) {
  switch (s) {
    case VerifyStatus::kValid: return "VALID";
    case VerifyStatus::kMalformed: return "MALFORMED";
    case VerifyStatus::kUnknownKey: return "UNKNOWN_KEY";
    case VerifyStatus::kBadSignature: return "BAD_SIGNATURE";
    case VerifyStatus::kExpired: return "EXPIRED";
    case VerifyStatus::kNotYetValid: return "NOT_YET_VALID";
    case VerifyStatus::kKeyDisabled: return "KEY_DISABLED";
    case VerifyStatus::kWrongAudience: return "WRONG_AUDIENCE";
  }
  return "UNKNOWN";
}

absl::Status ValidateKeyringName(absl::string_view name) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  };
  if (name.empty() || name.size() > 63 || !std::all_of(name.begin(), name.end(), ok_char) ||
      name[0] == '_' || name[0] == '-') {
    return absl::InvalidArgumentError(
        "keyring: name must be 1-63 characters of a-z, 0-9, '_' and '-', starting with a "
        "letter or digit");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::New(
    std::string name, uint64_t revision, absl::Time created_at,
    std::vector<std::shared_ptr<const Key>> keys) {
  if (absl::Status s = ValidateKeyringName(name); !s.ok()) return s;
  std::shared_ptr<Keyring> kr(new Keyring());
  kr->name_ = std::move(name);
  kr->revision_ = revision;
  kr->created_at_ = created_at;
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    if (a->metadata().created_at != b->metadata().created_at) {
      return a->metadata().created_at > b->metadata().created_at;
    }
    return a->id() > b->id();
  });
  kr->keys_ = std::move(keys);
  for (const auto& k : kr->keys_) {
    if (!kr->by_id_.emplace(k->id(), k.get()).second) {
      return absl::FailedPreconditionError(
          absl::StrCat("keyring ", kr->name_, ": duplicate key id ", k->id()));
    }
    if (k->state() == v1::PRIMARY) {
      if (kr->primary_ != nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("keyring ", kr->name_, ": more than one primary key"));
      }
      kr->primary_ = k.get();
    }
  }
  if (kr->primary_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("keyring ", kr->name_, ": no primary key"));
  }
  return std::shared_ptr<const Keyring>(std::move(kr));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Create(std::string name,
                                                               absl::Time now) {
  uint32_t id = 0;
  while (id == 0) id = crypto::RandomUint32();
  absl::StatusOr<std::shared_ptr<const Key>> key =
      Key::Generate(id, v1::HMAC_SHA256, v1::PRIMARY, now);
  if (!key.ok()) return key.status();
  return New(std::move(name), 1, now, {*std::move(key)});
}

const Key* Keyring::Find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

absl::StatusOr<SignResult> Keyring::Sign(absl::string_view payload, absl::string_view audience,
                                         absl::Time now, absl::Duration ttl) const {
  if (payload.size() > token::kMaxPayloadSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload: ", payload.size(), " bytes exceeds the limit of ", token::kMaxPayloadSize));
  }
  if (audience.size() > token::kMaxAudienceSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "audience: ", audience.size(), " bytes exceeds the limit of ", token::kMaxAudienceSize));
  }
  if (ttl < absl::Seconds(1) || ttl > absl::Hours(24 * 366 * 10)) {
    return absl::InvalidArgumentError("ttl: must be between 1s and 10 years");
  }
  SignResult r;
  r.key_id = primary_->id();
  r.issued_at = absl::ToUnixSeconds(now);
  r.expires_at = r.issued_at + absl::ToInt64Seconds(ttl);
  token::NativeClaims claims{r.key_id, r.issued_at, r.expires_at};
  r.token = token::SignNative(*primary_->mac(), claims, audience, payload);
  return r;
}

VerifyResult Keyring::Verify(absl::string_view token, absl::string_view audience, absl::Time now,
                             const VerifyOptions& options) const {
  VerifyResult r;
  std::optional<token::ParsedNativeToken> t = token::ParseNative(token);
  if (!t.has_value()) {
    r.status = VerifyStatus::kMalformed;
    return r;
  }
  r.key_id = t->claims.key_id;
  const Key* key = Find(t->claims.key_id);
  if (key == nullptr) {
    r.status = VerifyStatus::kUnknownKey;
    return r;
  }
  if (!key->CanVerify()) {
    r.status = VerifyStatus::kKeyDisabled;
    return r;
  }
  if (!token::CheckNativeMac(*key->mac(), *t, audience)) {
    // Only the audience tag tells a genuine token for another audience from a forgery; it
    // is not authenticated on its own, so this is a diagnosis, never an acceptance.
    r.status = crypto::ConstantTimeEquals(t->audience_tag(), token::AudienceTag(audience))
                   ? VerifyStatus::kBadSignature
                   : VerifyStatus::kWrongAudience;
    return r;
  }
  r.issued_at = t->claims.issued_at;
  r.expires_at = t->claims.expires_at;
  const int64_t now_s = absl::ToUnixSeconds(now);
  if (r.issued_at > now_s + absl::ToInt64Seconds(options.max_clock_skew)) {
    r.status = VerifyStatus::kNotYetValid;
    return r;
  }
  if (now_s >= r.expires_at) {
    r.status = VerifyStatus::kExpired;
    return r;
  }
  r.status = VerifyStatus::kValid;
  r.payload = std::string(t->payload());
  r.refresh_recommended = key->state() != v1::PRIMARY;
  return r;
}

uint32_t Keyring::NewKeyId() const {
  for (;;) {
    uint32_t id = crypto::RandomUint32();
    if (id != 0 && Find(id) == nullptr) return id;
  }
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Next(
    std::vector<std::shared_ptr<const Key>> keys) const {
  return New(name_, revision_ + 1, created_at_, std::move(keys));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Rotate(absl::Time now,
                                                               uint32_t* new_key_id) const {
  const uint32_t id = NewKeyId();
  absl::StatusOr<std::shared_ptr<const Key>> fresh =
      Key::Generate(id, v1::HMAC_SHA256, v1::PRIMARY, now);
  if (!fresh.ok()) return fresh.status();
  std::vector<std::shared_ptr<const Key>> keys;
  keys.reserve(keys_.size() + 1);
  keys.push_back(*std::move(fresh));
  for (const auto& k : keys_) {
    keys.push_back(k->state() == v1::PRIMARY ? k->WithState(v1::ACTIVE, now) : k);
  }
  if (new_key_id != nullptr) *new_key_id = id;
  return Next(std::move(keys));
}

void Keyring::ToStored(v1::StoredKeyring* out) const {
  out->Clear();
  out->set_name(name_);
  out->set_revision(revision_);
  out->set_created_unix(absl::ToUnixSeconds(created_at_));
  for (const auto& k : keys_) {
    v1::StoredKey* sk = out->add_keys();
    const KeyMetadata& md = k->metadata();
    sk->set_id(md.id);
    sk->set_algorithm(md.algorithm);
    sk->set_state(md.state);
    sk->set_created_unix(absl::ToUnixSeconds(md.created_at));
    sk->set_state_changed_unix(absl::ToUnixSeconds(md.state_changed_at));
    absl::string_view m = k->material();
    sk->set_material(m.data(), m.size());
  }
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::FromStored(v1::StoredKeyring* stored) {
  std::vector<std::shared_ptr<const Key>> keys;
  absl::Status error;
  for (v1::StoredKey& sk : *stored->mutable_keys()) {
    KeyMetadata md{sk.id(), sk.algorithm(), sk.state(), absl::FromUnixSeconds(sk.created_unix()),
                   absl::FromUnixSeconds(sk.state_changed_unix())};
    crypto::SecretBytes material = crypto::SecretBytes::CopyFrom(sk.material());
    crypto::SecureWipe(sk.mutable_material()->data(), sk.material().size());
    if (!error.ok()) continue;  // keep wiping the remaining material
    absl::StatusOr<std::shared_ptr<const Key>> key = Key::New(md, std::move(material));
    if (!key.ok()) {
      error = key.status();
      continue;
    }
    keys.push_back(*std::move(key));
  }
  if (!error.ok()) return error;
  return New(stored->name(), stored->revision(), absl::FromUnixSeconds(stored->created_unix()),
             std::move(keys));
}

}  // namespace sessiontoken::keyring
