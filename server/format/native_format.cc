#include "server/format/native_format.h"

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/random.h"
#include "server/format/validity.h"
#include "server/token/base64url.h"
#include "server/token/native.h"

namespace sessiontoken::format {
namespace {

// Why a parsed token is not acceptable before its MAC is checked; nullopt when its key can
// check it.
std::optional<VerifyStatus> KeyProblem(const keyring::Key* key, const KeyMac* km) {
  if (key == nullptr) return VerifyStatus::kUnknownKey;
  if (!key->CanVerify() || km == nullptr) return VerifyStatus::kKeyDisabled;
  // A native token naming a Flask key.
  if (key->algorithm() != v1::HMAC_SHA256) return VerifyStatus::kBadSignature;
  return std::nullopt;
}

// The payload of a token whose MAC checked out: in clear, or opened. False (and nothing in
// *out) when a sealed payload does not open: unreachable without the key, since the MAC
// covers every byte, but never a payload then.
bool ReadPayload(const KeyMac& km, const token::ParsedNativeToken& t, absl::string_view audience,
                 std::string* out) {
  if (!t.sealed()) {
    *out = std::string(t.payload());
    return true;
  }
  if (km.seal == nullptr) return false;
  absl::StatusOr<crypto::SecretBytes> plain = token::OpenSealedPayload(*km.seal, t, audience);
  if (!plain.ok()) return false;
  *out = std::string(plain->view());
  return true;
}

}  // namespace

std::string TokenIdText(absl::string_view raw_token_id) {
  return token::Base64UrlEncode(raw_token_id);
}

absl::StatusOr<SignResult> SignNative(const KeyMac& primary, absl::string_view payload,
                                      absl::string_view audience, const NativeSignParams& params) {
  const size_t size = token::NativeV2TokenSize(params.subject.size(), payload.size(), params.seal);
  if (size > token::kMaxTokenSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload: with this subject", params.seal ? " and sealing" : "", " the token would be ",
        size, " characters, over the cookie limit of ", token::kMaxTokenSize));
  }
  const token::NativeClaims claims{primary.key->id(), params.issued_at, params.expires_at};
  char token_id[token::kTokenIdSize];
  crypto::RandomFill(token_id, sizeof(token_id));
  const token::NativeSession session{absl::string_view(token_id, sizeof(token_id)), params.subject};
  char nonce[crypto::Aes256Gcm::kNonceSize];
  token::PayloadSeal seal{primary.seal.get(), absl::string_view(nonce, sizeof(nonce))};
  if (params.seal) {
    if (primary.seal == nullptr) return absl::InternalError("the primary key cannot seal");
    crypto::RandomFill(nonce, sizeof(nonce));
  }
  absl::StatusOr<std::string> t = token::SignNativeV2(*primary.mac, claims, session, audience,
                                                      payload, params.seal ? &seal : nullptr);
  if (!t.ok()) return t.status();
  SignResult r;
  r.token = *std::move(t);
  r.key_id = claims.key_id;
  r.issued_at = params.issued_at;
  r.expires_at = params.expires_at;
  r.token_id = TokenIdText(session.token_id);
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
  const KeyMac* km = key != nullptr ? macs.Find(key->id()) : nullptr;
  if (std::optional<VerifyStatus> problem = KeyProblem(key, km); problem.has_value()) {
    r.status = *problem;
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
  if (t->version >= 2) {
    r.subject = std::string(t->subject());
    r.token_id = TokenIdText(t->token_id());
  }
  r.status =
      CheckValidity(r.issued_at, r.expires_at, now, options.max_clock_skew, ExpiryEdge::kExpiredAt);
  if (r.status != VerifyStatus::kValid) return r;
  if (!ReadPayload(*km, *t, audience, &r.payload)) {
    r.status = VerifyStatus::kBadSignature;
    return r;
  }
  r.refresh_recommended = key->state() != v1::PRIMARY;
  return r;
}

}  // namespace sessiontoken::format
