// KEK handling and the Sealer, which encrypts a keyring's stored form with the
// key-encryption key (AES-256-GCM) before it reaches any Store. The KEK is never written
// by the service (except the explicit development KEK), logged or returned.
#ifndef SESSIONTOKEN_SERVER_STORE_SEALER_H_
#define SESSIONTOKEN_SERVER_STORE_SEALER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

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

// Store record names of revocation-list shards start with this (server/engine/revocations.h:
// "_rev.<keyring>.<shard>"); their sealed form is Sealer::SealRevocations'.
inline constexpr absl::string_view kRevocationRecordPrefix = "_rev.";

// Seals keyrings and high-water marks with the current KEK and opens records sealed with
// the current KEK or any previous one (a KEK rotation in progress, docs/operations.md). Each
// record names the KEK that sealed it by its fingerprint, so the right KEK is found at once
// and a missing one is named (by fingerprint; a KEK itself is never in a message).
class Sealer {
 public:
  static absl::StatusOr<std::unique_ptr<Sealer>> New(crypto::SecretBytes kek);
  // `current` seals; `previous` only open. InvalidArgument when a KEK is given twice.
  static absl::StatusOr<std::unique_ptr<Sealer>> New(crypto::SecretBytes current,
                                                     std::vector<crypto::SecretBytes> previous);
  ~Sealer();

  // A public fingerprint of the current KEK (16 hex chars, HMAC-derived), stored with each
  // sealed record so a wrong KEK is reported as such, not as corruption.
  const std::string& fingerprint() const;
  // The previous KEKs' fingerprints, in the order given.
  std::vector<std::string> previous_fingerprints() const;

  // The fingerprint (hex) of the KEK that sealed `blob` (a keyring or a mark); DataLoss when
  // it is not a sealed record.
  static absl::StatusOr<std::string> FingerprintOf(absl::string_view blob);
  // True when `blob` is a sealed record of the current KEK.
  bool SealedWithCurrent(absl::string_view blob) const;
  // FailedPrecondition naming `what` and the fingerprint when `blob` is a sealed record of a
  // KEK this sealer lacks; OK otherwise (also for damaged data: Open says what is wrong).
  absl::Status CheckKek(absl::string_view what, absl::string_view blob) const;

  // The keyring's name and revision are bound into the associated data.
  absl::StatusOr<std::string> Seal(const keyring::Keyring& keyring) const;
  // FailedPrecondition for a KEK this sealer lacks; DataLoss for damaged data. The keyring
  // name and revision are authenticated, so a file renamed to another keyring does not open.
  // Blobs sealed before revisions were bound (format STK1) still open.
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> Open(absl::string_view name,
                                                               absl::string_view blob) const;

  // A keyring's high-water mark (the highest revision the store has held), sealed so that it
  // cannot be lowered without the KEK (server/engine: rollback protection).
  absl::StatusOr<std::string> SealMark(absl::string_view name, uint64_t revision) const;
  // The revision in a sealed mark; DataLoss when damaged or not a mark of `name`.
  absl::StatusOr<uint64_t> OpenMark(absl::string_view name, absl::string_view blob) const;

  // A shard of a keyring's revocation list (serialized v1::StoredRevocations), sealed under
  // its store record name `record` (bound into the associated data): subjects are personal
  // data, and nobody without the KEK can drop or alter an entry unnoticed.
  absl::StatusOr<std::string> SealRevocations(absl::string_view record,
                                              absl::string_view plain) const;
  // The serialized shard; DataLoss when damaged or not the revocations of `record`.
  absl::StatusOr<std::string> OpenRevocations(absl::string_view record,
                                              absl::string_view blob) const;

  // HMAC-SHA256 of `data` under a key derived from the current KEK (backups, see
  // backup_file.h); reveals nothing of the KEK.
  std::string BackupMac(absl::string_view data) const;
  // OK when `mac` is BackupMac(data) under the KEK of fingerprint `fingerprint_hex` (current
  // or previous); FailedPrecondition when this sealer lacks that KEK; DataLoss otherwise.
  absl::Status CheckBackupMac(absl::string_view fingerprint_hex, absl::string_view data,
                              absl::string_view mac) const;

  struct Kek;  // one KEK's cipher, fingerprint and backup MAC key (opaque)

 private:
  explicit Sealer(std::vector<std::unique_ptr<Kek>> keks);
  // The KEK of raw fingerprint `fp`, or null.
  const Kek* Find(absl::string_view fp) const;
  // Checks a sealed record's magic and finds its KEK; *magic gets the magic.
  absl::StatusOr<const Kek*> CheckHeader(absl::string_view what, absl::string_view name,
                                         absl::string_view blob, absl::string_view* magic) const;
  // The message for a record sealed with a KEK this sealer lacks.
  std::string MissingKek(absl::string_view what, absl::string_view fp_hex) const;

  std::vector<std::unique_ptr<Kek>> keks_;  // [0] is the current KEK
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_SEALER_H_
