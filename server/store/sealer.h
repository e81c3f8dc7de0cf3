// KEK handling and the Sealer, which encrypts a keyring's stored form with the
// key-encryption key (AES-256-GCM) before it reaches any Store. The KEK is never written
// by the service (except the explicit development KEK), logged or returned.
#ifndef SESSIONTOKEN_SERVER_STORE_SEALER_H_
#define SESSIONTOKEN_SERVER_STORE_SEALER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/crypto/aead.h"
#include "server/crypto/secret_bytes.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::store {

// Parses a KEK: 64 hex characters or standard/URL-safe base64 of 32 bytes (surrounding
// whitespace ignored). Raw binary is refused (it cannot be told from a passphrase).
absl::StatusOr<crypto::SecretBytes> ParseKek(absl::string_view text);
// Reads and parses a KEK file. FailedPrecondition when group or others have any access to
// it (the message says how to fix the mode).
absl::StatusOr<crypto::SecretBytes> LoadKekFile(const std::string& path);
// The KEK in environment variable `name` (nullopt when unset or empty). The value is wiped
// in place and the variable removed in every case, also when it does not parse or the
// caller uses another source: a KEK never stays in /proc/<pid>/environ.
absl::StatusOr<std::optional<crypto::SecretBytes>> TakeKekFromEnv(const std::string& name);
// Reads the development KEK at `path`, creating it (0600, random) when absent;
// *created tells which happened. For local development only.
absl::StatusOr<crypto::SecretBytes> LoadOrCreateDevKek(const std::string& path, bool* created);

class Sealer {
 public:
  static absl::StatusOr<std::unique_ptr<Sealer>> New(crypto::SecretBytes kek);

  // A public fingerprint of the KEK (16 hex chars, HMAC-derived), stored with each sealed
  // keyring so a wrong KEK is reported as such, not as corruption.
  const std::string& fingerprint() const { return fingerprint_hex_; }

  // The keyring's name and revision are bound into the associated data.
  absl::StatusOr<std::string> Seal(const keyring::Keyring& keyring) const;
  // FailedPrecondition for a different KEK; DataLoss for damaged data. The keyring name and
  // revision are authenticated, so a file renamed to another keyring does not open. Blobs
  // sealed before revisions were bound (format STK1) still open.
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> Open(absl::string_view name,
                                                               absl::string_view blob) const;

  // A keyring's high-water mark (the highest revision the store has held), sealed so that it
  // cannot be lowered without the KEK (server/engine: rollback protection).
  absl::StatusOr<std::string> SealMark(absl::string_view name, uint64_t revision) const;
  // The revision in a sealed mark; DataLoss when damaged or not a mark of `name`.
  absl::StatusOr<uint64_t> OpenMark(absl::string_view name, absl::string_view blob) const;

 private:
  Sealer(std::unique_ptr<crypto::Aes256Gcm> aead, std::string fp_raw, std::string fp_hex)
      : aead_(std::move(aead)),
        fingerprint_raw_(std::move(fp_raw)),
        fingerprint_hex_(std::move(fp_hex)) {}
  std::string Aad(absl::string_view magic, absl::string_view name,
                  absl::string_view revision) const;
  // Checks a sealed record's magic and KEK fingerprint; *magic gets the magic.
  absl::Status CheckHeader(absl::string_view what, absl::string_view name, absl::string_view blob,
                           absl::string_view* magic) const;

  std::unique_ptr<crypto::Aes256Gcm> aead_;
  std::string fingerprint_raw_;
  std::string fingerprint_hex_;
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_SEALER_H_
