#include "server/format/keyring_signer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/format/flask_format.h"
#include "server/format/native_format.h"
#include "server/format/validity.h"
#include "server/token/flask.h"
#include "server/token/native.h"

namespace sessiontoken::format {

absl::StatusOr<std::shared_ptr<const KeyringSigner>> KeyringSigner::New(
    std::shared_ptr<const keyring::Keyring> keyring) {
  if (keyring == nullptr) return absl::InvalidArgumentError("KeyringSigner: no keyring");
  absl::StatusOr<KeyMacs> macs = KeyMacs::New(*keyring);
  if (!macs.ok()) return macs.status();
  return std::shared_ptr<const KeyringSigner>(
      new KeyringSigner(std::move(keyring), *std::move(macs)));
}

absl::StatusOr<SignResult> KeyringSigner::Sign(absl::string_view payload,
                                               absl::string_view audience, absl::Time now,
                                               absl::Duration ttl,
                                               absl::string_view subject) const {
  const KeyMac* primary = primary_;
  if (primary == nullptr) return absl::InternalError("primary key has no MAC");
  const int64_t issued_at = absl::ToUnixSeconds(now);
  const int64_t expires_at = SaturatingAdd(issued_at, absl::ToInt64Seconds(ttl));
  const bool seal = keyring_->policy().seal_payloads();
  if (primary->key->algorithm() == v1::HMAC_SHA1_FLASK) {
    if (!subject.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "subject: keyring ", keyring_->name(),
          " signs Flask-format cookies, which cannot carry a subject (rotate to a native key)"));
    }
    if (seal) {
      return absl::FailedPreconditionError(absl::StrCat(
          "keyring ", keyring_->name(),
          " seals payloads but its primary key is a Flask key, which cannot seal; rotate to a "
          "native key or turn seal_payloads off"));
    }
    return SignFlask(macs_, *primary, payload, audience, issued_at, expires_at);
  }
  return SignNative(*primary, payload, audience, {issued_at, expires_at, subject, seal});
}

VerifyResult KeyringSigner::Verify(absl::string_view token, absl::string_view audience,
                                   absl::Time now, const VerifyOptions& options) const {
  if (token::HasNativePrefix(token)) {
    return VerifyNative(*keyring_, macs_, token, audience, now, options);
  }
  if (token::LooksLikeFlask(token)) return VerifyFlask(macs_, token, audience, now, options);
  VerifyResult r;
  r.status = VerifyStatus::kMalformed;
  return r;
}

}  // namespace sessiontoken::format
