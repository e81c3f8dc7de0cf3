#include "server/format/flask_format.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/format/validity.h"
#include "server/token/flask.h"

namespace sessiontoken::format {
namespace {

// Checks `t` against the Flask key `km` for `audience` (the salt).
bool Matches(const KeyMac& km, const token::ParsedFlaskToken& t, absl::string_view audience) {
  if (audience == token::kFlaskDefaultSalt) return token::CheckFlaskSignature(*km.mac, t);
  absl::StatusOr<std::unique_ptr<crypto::Hmac>> derived =
      token::DeriveFlaskSigner(km.key->material(), audience);
  return derived.ok() && token::CheckFlaskSignature(**derived, t);
}

// The first Flask key whose MAC matches: verify-capable keys first, then disabled ones.
const KeyMac* FindSigner(const KeyMacs& macs, const token::ParsedFlaskToken& t,
                         absl::string_view audience) {
  for (const bool verify_capable : {true, false}) {
    for (const KeyMac& km : macs.all()) {
      if (km.key->algorithm() != v1::HMAC_SHA1_FLASK) continue;
      if (km.key->CanVerify() == verify_capable && Matches(km, t, audience)) return &km;
    }
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<SignResult> SignFlask(const KeyMac& primary, absl::string_view payload,
                                     absl::string_view audience, int64_t issued_at,
                                     int64_t expires_at) {
  SignResult r;
  r.key_id = primary.key->id();
  r.issued_at = issued_at;
  r.expires_at = expires_at;
  if (audience == token::kFlaskDefaultSalt) {
    r.token = token::SignFlask(*primary.mac, payload, issued_at);
  } else {
    absl::StatusOr<std::unique_ptr<crypto::Hmac>> signer =
        token::DeriveFlaskSigner(primary.key->material(), audience);
    if (!signer.ok()) return signer.status();
    r.token = token::SignFlask(**signer, payload, issued_at);
  }
  if (r.token.size() > token::kFlaskMaxTokenSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload: ", payload.size(), " bytes make a Flask cookie of ", r.token.size(),
        " bytes, over the limit of ", token::kFlaskMaxTokenSize, " (after compression)"));
  }
  return r;
}

VerifyResult VerifyFlask(const KeyMacs& macs, absl::string_view token, absl::string_view audience,
                         absl::Time now, const VerifyOptions& options) {
  VerifyResult r;
  std::optional<token::ParsedFlaskToken> t = token::ParseFlask(token);
  if (!t.has_value()) {
    r.status = VerifyStatus::kMalformed;
    return r;
  }
  const KeyMac* match = FindSigner(macs, *t, audience);
  if (match == nullptr) {
    r.status = macs.has_flask_keys() ? VerifyStatus::kBadSignature : VerifyStatus::kUnknownKey;
    return r;
  }
  r.key_id = match->key->id();
  if (!match->key->CanVerify()) {
    r.status = VerifyStatus::kKeyDisabled;
    return r;
  }
  r.issued_at = t->timestamp;
  r.expires_at = SaturatingAdd(t->timestamp, absl::ToInt64Seconds(options.max_age));
  r.status =
      CheckValidity(r.issued_at, r.expires_at, now, options.max_clock_skew, ExpiryEdge::kValidAt);
  if (r.status != VerifyStatus::kValid) return r;
  r.payload = std::move(t->payload);
  r.refresh_recommended = match->key->state() != v1::PRIMARY;
  return r;
}

}  // namespace sessiontoken::format
