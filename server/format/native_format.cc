#include "server/format/native_format.h"

#include <optional>
#include <string>

#include "server/format/validity.h"
#include "server/token/native.h"

namespace sessiontoken::format {

SignResult SignNative(const KeyMac& primary, absl::string_view payload, absl::string_view audience,
                      int64_t issued_at, int64_t expires_at) {
  SignResult r;
  r.key_id = primary.key->id();
  r.issued_at = issued_at;
  r.expires_at = expires_at;
  token::NativeClaims claims{r.key_id, r.issued_at, r.expires_at};
  r.token = token::SignNative(*primary.mac, claims, audience, payload);
  return r;
}

VerifyResult VerifyNative(const keyring::Keyring& keyring, const KeyMacs& macs,
                          absl::string_view token, absl::string_view audience, absl::Time now,
                          const VerifyOptions& options) {
  VerifyResult r;
  std::optional<token::ParsedNativeToken> t = token::ParseNative(token);
  if (!t.has_value()) {
    r.status = VerifyStatus::kMalformed;
    return r;
  }
  r.key_id = t->claims.key_id;
  const keyring::Key* key = keyring.Find(t->claims.key_id);
  if (key == nullptr) {
    r.status = VerifyStatus::kUnknownKey;
    return r;
  }
  const KeyMac* km = macs.Find(key->id());
  if (!key->CanVerify() || km == nullptr) {
    r.status = VerifyStatus::kKeyDisabled;
    return r;
  }
  if (key->algorithm() != v1::HMAC_SHA256) {
    r.status = VerifyStatus::kBadSignature;  // a native token naming a Flask key
    return r;
  }
  if (!token::CheckNativeMac(*km->mac, *t, audience)) {
    // Only the audience tag tells a genuine token for another audience from a forgery; it
    // is not authenticated on its own, so this is a diagnosis, never an acceptance.
    r.status = crypto::ConstantTimeEquals(t->audience_tag(), token::AudienceTag(audience))
                   ? VerifyStatus::kBadSignature
                   : VerifyStatus::kWrongAudience;
    return r;
  }
  r.issued_at = t->claims.issued_at;
  r.expires_at = t->claims.expires_at;
  r.status =
      CheckValidity(r.issued_at, r.expires_at, now, options.max_clock_skew, ExpiryEdge::kExpiredAt);
  if (r.status != VerifyStatus::kValid) return r;
  r.payload = std::string(t->payload());
  r.refresh_recommended = key->state() != v1::PRIMARY;
  return r;
}

}  // namespace sessiontoken::format
