#include "server/keyring/keyring.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/random.h"
#include "server/crypto/secret_bytes.h"
#include "server/token/flask.h"
#include "server/token/native.h"

namespace sessiontoken::keyring {

namespace {
// a + b for times in seconds, clamped instead of overflowing (tokens and options may hold
// values near the int64 limits).
int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return out;
}
}  // namespace

absl::string_view VerifyStatusName(VerifyStatus s) {
  switch (s) {
    case VerifyStatus::kValid:
      return "VALID";
    case VerifyStatus::kMalformed:
      return "MALFORMED";
    case VerifyStatus::kUnknownKey:
      return "UNKNOWN_KEY";
    case VerifyStatus::kBadSignature:
      return "BAD_SIGNATURE";
    case VerifyStatus::kExpired:
      return "EXPIRED";
    case VerifyStatus::kNotYetValid:
      return "NOT_YET_VALID";
    case VerifyStatus::kKeyDisabled:
      return "KEY_DISABLED";
    case VerifyStatus::kWrongAudience:
      return "WRONG_AUDIENCE";
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
    std::vector<std::shared_ptr<const Key>> keys, v1::KeyringPolicy policy) {
  if (absl::Status s = ValidateKeyringName(name); !s.ok()) return s;
  std::shared_ptr<Keyring> kr(new Keyring());
  kr->name_ = std::move(name);
  kr->revision_ = revision;
  kr->created_at_ = created_at;
  kr->policy_ = std::move(policy);
  // Newest first; keys created in the same instant keep their given order (newest first).
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return a->metadata().created_at > b->metadata().created_at;
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

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Create(std::string name, absl::Time now,
                                                               v1::KeyringPolicy policy,
                                                               Algorithm algorithm) {
  uint32_t id = 0;
  while (id == 0) id = crypto::RandomUint32();
  absl::StatusOr<std::shared_ptr<const Key>> key = Key::Generate(id, algorithm, v1::PRIMARY, now);
  if (!key.ok()) return key.status();
  return New(std::move(name), 1, now, {*std::move(key)}, std::move(policy));
}

const Key* Keyring::Find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

absl::StatusOr<SignResult> Keyring::Sign(absl::string_view payload, absl::string_view audience,
                                         absl::Time now, absl::Duration ttl) const {
  const bool flask = primary_->metadata().algorithm == v1::HMAC_SHA1_FLASK;
  // Flask payloads may be compressed into the cookie; the cookie size is checked below.
  const size_t max_payload = flask ? token::kFlaskMaxPayloadSize : token::kMaxPayloadSize;
  if (payload.size() > max_payload) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload: ", payload.size(), " bytes exceeds the limit of ", max_payload));
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
  if (flask) {
    // Flask cookies carry only the issue time; Verify applies max_age.
    std::unique_ptr<crypto::Hmac> derived;
    const crypto::Hmac* signer = primary_->mac();
    if (audience != token::kFlaskDefaultSalt) {
      absl::StatusOr<std::unique_ptr<crypto::Hmac>> d = primary_->FlaskSigner(audience);
      if (!d.ok()) return d.status();
      derived = *std::move(d);
      signer = derived.get();
    }
    r.token = token::SignFlask(*signer, payload, r.issued_at);
    if (r.token.size() > token::kFlaskMaxTokenSize) {
      return absl::InvalidArgumentError(absl::StrCat("payload: the Flask cookie would be ",
                                                     r.token.size(), " bytes, over the limit of ",
                                                     token::kFlaskMaxTokenSize));
    }
    return r;
  }
  token::NativeClaims claims{r.key_id, r.issued_at, r.expires_at};
  r.token = token::SignNative(*primary_->mac(), claims, audience, payload);
  return r;
}

VerifyResult Keyring::Verify(absl::string_view token, absl::string_view audience, absl::Time now,
                             const VerifyOptions& options) const {
  if (token.substr(0, token::kNativePrefix.size()) == token::kNativePrefix) {
    return VerifyNative(token, audience, now, options);
  }
  if (token::LooksLikeFlask(token)) return VerifyFlask(token, audience, now, options);
  VerifyResult r;
  r.status = VerifyStatus::kMalformed;
  return r;
}

VerifyResult Keyring::VerifyFlask(absl::string_view token, absl::string_view audience,
                                  absl::Time now, const VerifyOptions& options) const {
  VerifyResult r;
  std::optional<token::ParsedFlaskToken> t = token::ParseFlask(token);
  if (!t.has_value()) {
    r.status = VerifyStatus::kMalformed;
    return r;
  }
  // The format names no key: try the verify-capable Flask keys newest first, then the
  // disabled ones (only to report KEY_DISABLED rather than BAD_SIGNATURE).
  const Key* match = nullptr;
  bool any_flask_key = false;
  for (int pass = 0; pass < 2 && match == nullptr; ++pass) {
    for (const auto& k : keys_) {
      if (k->metadata().algorithm != v1::HMAC_SHA1_FLASK || k->mac() == nullptr) continue;
      any_flask_key = true;
      if (k->CanVerify() != (pass == 0)) continue;
      std::unique_ptr<crypto::Hmac> derived;
      const crypto::Hmac* signer = k->mac();
      if (audience != token::kFlaskDefaultSalt) {
        absl::StatusOr<std::unique_ptr<crypto::Hmac>> d = k->FlaskSigner(audience);
        if (!d.ok()) continue;
        derived = *std::move(d);
        signer = derived.get();
      }
      if (token::CheckFlaskSignature(*signer, *t)) {
        match = k.get();
        break;
      }
    }
  }
  if (match == nullptr) {
    r.status = any_flask_key ? VerifyStatus::kBadSignature : VerifyStatus::kUnknownKey;
    return r;
  }
  r.key_id = match->id();
  if (!match->CanVerify()) {
    r.status = VerifyStatus::kKeyDisabled;
    return r;
  }
  r.issued_at = t->timestamp;
  r.expires_at = SaturatingAdd(t->timestamp, absl::ToInt64Seconds(options.max_age));
  const int64_t now_s = absl::ToUnixSeconds(now);
  if (r.issued_at > SaturatingAdd(now_s, absl::ToInt64Seconds(options.max_clock_skew))) {
    r.status = VerifyStatus::kNotYetValid;
    return r;
  }
  if (now_s > r.expires_at) {  // itsdangerous: expired when age > max_age
    r.status = VerifyStatus::kExpired;
    return r;
  }
  r.status = VerifyStatus::kValid;
  r.payload = std::move(t->payload);
  r.refresh_recommended = match->state() != v1::PRIMARY;
  return r;
}

VerifyResult Keyring::VerifyNative(absl::string_view token, absl::string_view audience,
                                   absl::Time now, const VerifyOptions& options) const {
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
  if (key->metadata().algorithm != v1::HMAC_SHA256) {
    r.status = VerifyStatus::kBadSignature;  // a native token naming a Flask key
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
  if (r.issued_at > SaturatingAdd(now_s, absl::ToInt64Seconds(options.max_clock_skew))) {
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
  return New(name_, revision_ + 1, created_at_, std::move(keys), policy_);
}

absl::StatusOr<const Key*> Keyring::FindOrError(uint32_t id) const {
  const Key* k = Find(id);
  if (k == nullptr) {
    return absl::NotFoundError(absl::StrCat("key_id: keyring ", name_, " has no key ", id));
  }
  return k;
}

std::vector<std::shared_ptr<const Key>> Keyring::Replace(uint32_t id,
                                                         std::shared_ptr<const Key> replacement,
                                                         absl::Time now) const {
  const bool new_primary = replacement->state() == v1::PRIMARY;
  std::vector<std::shared_ptr<const Key>> keys;
  keys.reserve(keys_.size());
  for (const auto& k : keys_) {
    if (k->id() == id) {
      keys.push_back(replacement);
    } else if (new_primary && k->state() == v1::PRIMARY) {
      keys.push_back(k->WithState(v1::ACTIVE, now));
    } else {
      keys.push_back(k);
    }
  }
  return keys;
}

namespace {
absl::Status Illegal(const Key& k, absl::string_view what, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat("key_id: cannot ", what, " key ", k.id(), " (",
                                                    v1::KeyState_Name(k.state()), "): ", why));
}
}  // namespace

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Rotate(absl::Time now, bool promote,
                                                               uint32_t* new_key_id,
                                                               Algorithm algorithm) const {
  if (algorithm == v1::ALGORITHM_UNSPECIFIED) algorithm = primary_->metadata().algorithm;
  const uint32_t id = NewKeyId();
  absl::StatusOr<std::shared_ptr<const Key>> fresh =
      Key::Generate(id, algorithm, promote ? v1::PRIMARY : v1::STAGED, now);
  if (!fresh.ok()) return fresh.status();
  std::vector<std::shared_ptr<const Key>> keys;
  keys.reserve(keys_.size() + 1);
  keys.push_back(*std::move(fresh));
  for (const auto& k : keys_) {
    keys.push_back(promote && k->state() == v1::PRIMARY ? k->WithState(v1::ACTIVE, now) : k);
  }
  if (new_key_id != nullptr) *new_key_id = id;
  return Next(std::move(keys));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Promote(uint32_t key_id,
                                                                absl::Time now) const {
  absl::StatusOr<const Key*> k = FindOrError(key_id);
  if (!k.ok()) return k.status();
  const KeyState s = (*k)->state();
  if (s == v1::PRIMARY) return Illegal(**k, "promote", "it is already the primary key");
  if (s != v1::STAGED && s != v1::ACTIVE) {
    return Illegal(**k, "promote", "only STAGED or ACTIVE keys can become primary");
  }
  return Next(Replace(key_id, (*k)->WithState(v1::PRIMARY, now), now));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Disable(uint32_t key_id,
                                                                absl::Time now) const {
  absl::StatusOr<const Key*> k = FindOrError(key_id);
  if (!k.ok()) return k.status();
  const KeyState s = (*k)->state();
  if (s == v1::PRIMARY) {
    return Illegal(**k, "disable", "promote another key (or rotate) first");
  }
  if (s != v1::STAGED && s != v1::ACTIVE) {
    return Illegal(**k, "disable", "only STAGED or ACTIVE keys can be disabled");
  }
  return Next(Replace(key_id, (*k)->WithState(v1::DISABLED, now), now));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Enable(uint32_t key_id,
                                                               absl::Time now) const {
  absl::StatusOr<const Key*> k = FindOrError(key_id);
  if (!k.ok()) return k.status();
  if ((*k)->state() != v1::DISABLED) {
    return Illegal(**k, "enable", "only DISABLED keys can be enabled");
  }
  return Next(Replace(key_id, (*k)->WithState(v1::ACTIVE, now), now));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Destroy(uint32_t key_id,
                                                                absl::Time now) const {
  absl::StatusOr<const Key*> k = FindOrError(key_id);
  if (!k.ok()) return k.status();
  if ((*k)->state() != v1::DISABLED) {
    return Illegal(**k, "destroy", "a key must be DISABLED before it is destroyed");
  }
  return Next(Replace(key_id, (*k)->WithState(v1::DESTROYED, now), now));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Import(Algorithm algorithm,
                                                               absl::string_view secret,
                                                               KeyState state, absl::Time now,
                                                               uint32_t* new_key_id) const {
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
  for (const auto& k : keys_) {
    if (k->metadata().algorithm == algorithm && !k->material().empty() &&
        crypto::ConstantTimeEquals(k->material(), secret)) {
      return absl::AlreadyExistsError(
          absl::StrCat("secret: keyring ", name_, " already holds this secret as key ", k->id()));
    }
  }
  const uint32_t id = NewKeyId();
  absl::StatusOr<std::shared_ptr<const Key>> key =
      Key::New({id, algorithm, state, now, now}, crypto::SecretBytes::CopyFrom(secret));
  if (!key.ok()) return key.status();
  std::vector<std::shared_ptr<const Key>> keys;
  keys.reserve(keys_.size() + 1);
  keys.push_back(*key);
  for (const auto& k : keys_) {
    keys.push_back(state == v1::PRIMARY && k->state() == v1::PRIMARY ? k->WithState(v1::ACTIVE, now)
                                                                     : k);
  }
  if (new_key_id != nullptr) *new_key_id = id;
  return Next(std::move(keys));
}

namespace {
absl::Duration D(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}
}  // namespace

absl::Status ValidatePolicy(const v1::KeyringPolicy& p, absl::Duration server_max_ttl) {
  struct Field {
    const char* name;
    const google::protobuf::Duration& d;
  } fields[] = {{"rotation_period", p.rotation_period()},
                {"stage_lead_time", p.stage_lead_time()},
                {"verify_window", p.verify_window()},
                {"destroy_after", p.destroy_after()},
                {"max_token_ttl", p.max_token_ttl()}};
  for (const Field& f : fields) {
    if (f.d.seconds() < 0 || f.d.nanos() != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy.", f.name, ": must be whole, non-negative seconds"));
    }
  }
  const absl::Duration period = D(p.rotation_period()), lead = D(p.stage_lead_time()),
                       window = D(p.verify_window()), ttl = D(p.max_token_ttl());
  if (period > absl::ZeroDuration() && lead >= period) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.stage_lead_time: ", absl::FormatDuration(lead),
                     " must be shorter than rotation_period ", absl::FormatDuration(period)));
  }
  if (ttl > server_max_ttl) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.max_token_ttl: ", absl::FormatDuration(ttl),
                     " exceeds the server's limit ", absl::FormatDuration(server_max_ttl)));
  }
  const absl::Duration effective_ttl = ttl > absl::ZeroDuration() ? ttl : server_max_ttl;
  if (window > absl::ZeroDuration() && effective_ttl > window) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy.max_token_ttl: ", absl::FormatDuration(effective_ttl),
        ttl > absl::ZeroDuration() ? "" : " (the server's limit, as max_token_ttl is 0)",
        " exceeds verify_window ", absl::FormatDuration(window),
        ": tokens would outlive their key"));
  }
  return absl::OkStatus();
}

absl::Duration Keyring::MaxTtl(absl::Duration server_max) const {
  absl::Duration ttl = D(policy_.max_token_ttl());
  return ttl > absl::ZeroDuration() && ttl < server_max ? ttl : server_max;
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::WithPolicy(
    const v1::KeyringPolicy& policy, absl::Duration server_max_ttl) const {
  if (absl::Status s = ValidatePolicy(policy, server_max_ttl); !s.ok()) return s;
  return New(name_, revision_ + 1, created_at_, keys_, policy);
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::ApplyDue(
    absl::Time now, std::vector<Transition>* applied) const {
  const absl::Duration period = D(policy_.rotation_period()), lead = D(policy_.stage_lead_time()),
                       window = D(policy_.verify_window()),
                       destroy_after = D(policy_.destroy_after());
  std::shared_ptr<const Keyring> cur;  // null: unchanged so far
  auto self = [&]() -> const Keyring& { return cur ? *cur : *this; };
  auto step = [&](absl::StatusOr<std::shared_ptr<const Keyring>> next, const char* op,
                  uint32_t id) -> absl::Status {
    if (!next.ok()) return next.status();
    cur = *std::move(next);
    applied->push_back({op, id});
    return absl::OkStatus();
  };
  // Bounded: each pass applies at most one transition per key plus one rotation.
  for (int guard = 0; guard < 64; ++guard) {
    const Keyring& k = self();
    absl::Status s;
    bool changed = false;
    // 1. Promote the newest STAGED key whose lead time has passed.
    for (const auto& key : k.keys_) {
      if (key->state() == v1::STAGED && key->metadata().state_changed_at + lead <= now) {
        s = step(k.Promote(key->id(), now), "promote", key->id());
        changed = true;
        break;
      }
    }
    if (!s.ok()) return s;
    if (changed) continue;
    // 2. Rotate when the primary is due (staging lead-time early), unless a key is staged.
    if (period > absl::ZeroDuration()) {
      const bool staged = std::any_of(k.keys_.begin(), k.keys_.end(),
                                      [](const auto& x) { return x->state() == v1::STAGED; });
      if (!staged && k.primary_->metadata().state_changed_at + period - lead <= now) {
        uint32_t id = 0;
        const bool promote = lead == absl::ZeroDuration();
        absl::StatusOr<std::shared_ptr<const Keyring>> next = k.Rotate(now, promote, &id);
        if (!(s = step(std::move(next), promote ? "rotate" : "stage", id)).ok()) return s;
        continue;
      }
    }
    // 3. Disable ACTIVE keys past the verify window; 4. destroy DISABLED keys.
    for (const auto& key : k.keys_) {
      const absl::Time since = key->metadata().state_changed_at;
      if (window > absl::ZeroDuration() && key->state() == v1::ACTIVE && since + window <= now) {
        s = step(k.Disable(key->id(), now), "disable", key->id());
        changed = true;
        break;
      }
      if (destroy_after > absl::ZeroDuration() && key->state() == v1::DISABLED &&
          since + destroy_after <= now) {
        s = step(k.Destroy(key->id(), now), "destroy", key->id());
        changed = true;
        break;
      }
    }
    if (!s.ok()) return s;
    if (!changed) break;
  }
  if (cur) {
    // Collapse the intermediate revisions: one committed change.
    return New(name_, revision_ + 1, created_at_, cur->keys_, policy_);
  }
  return std::shared_ptr<const Keyring>();
}

void Keyring::ToStored(v1::StoredKeyring* out) const {
  out->Clear();
  out->set_name(name_);
  out->set_revision(revision_);
  out->set_created_unix(absl::ToUnixSeconds(created_at_));
  *out->mutable_policy() = policy_;
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
             std::move(keys), stored->policy());
}

}  // namespace sessiontoken::keyring
