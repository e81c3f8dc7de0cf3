// KeyringSigner: a keyring snapshot as a token primitive (Tink's MacWrapper). Built once per
// snapshot with the MAC of every key; Sign issues a token with the primary key in its
// format; Verify routes a token to its format by shape (native "st1." prefix, or the Flask
// cookie's dots) and from there to its key. Immutable, so readers share it without locks.
#ifndef SESSIONTOKEN_SERVER_FORMAT_KEYRING_SIGNER_H_
#define SESSIONTOKEN_SERVER_FORMAT_KEYRING_SIGNER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/format/key_macs.h"
#include "server/format/result.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::format {

class KeyringSigner {
 public:
  static absl::StatusOr<std::shared_ptr<const KeyringSigner>> New(
      std::shared_ptr<const keyring::Keyring> keyring);

  const keyring::Keyring& keyring() const { return *keyring_; }
  const std::shared_ptr<const keyring::Keyring>& shared_keyring() const { return keyring_; }

  // Signs with the primary key; the token expires `ttl` after `now`. A native primary
  // issues a v2 token carrying `subject` (may be empty), its payload sealed when the
  // keyring's policy says seal_payloads. Preconditions (checked by the engine, where
  // requests enter the core): payload, audience, subject and ttl within its limits.
  // InvalidArgument when the token would not fit in a browser cookie, or for a subject on a
  // Flask primary (the Flask format has no place for one); FailedPrecondition when the
  // policy seals payloads but the primary is a Flask key (which cannot seal: never issued
  // in clear instead).
  absl::StatusOr<SignResult> Sign(absl::string_view payload, absl::string_view audience,
                                  absl::Time now, absl::Duration ttl,
                                  absl::string_view subject = {}) const;
  // Verifies a token of any format this keyring's keys support. Never fails: every problem
  // is a VerifyStatus.
  VerifyResult Verify(absl::string_view token, absl::string_view audience, absl::Time now,
                      const VerifyOptions& options = {}) const;

 private:
  KeyringSigner(std::shared_ptr<const keyring::Keyring> keyring, KeyMacs macs)
      : keyring_(std::move(keyring)),
        macs_(std::move(macs)),
        primary_(macs_.Find(keyring_->primary().id())) {}

  std::shared_ptr<const keyring::Keyring> keyring_;
  KeyMacs macs_;
  const KeyMac* primary_;  // in macs_, looked up once (never null: the primary has material)
};

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_KEYRING_SIGNER_H_
