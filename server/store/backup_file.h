// The backup file: every sealed keyring with its revision and revocation list (proto BackupFile,
// keyring.proto), framed by a magic line and a SHA-256 trailer, and authenticated by an HMAC under
// a key derived from the KEK (Sealer::BackupMac). The KEK is never in it; key material only sealed.
// Written by the server (KeyAdmin.ExportBackup), read by sessiontoken-restore.
#ifndef SESSIONTOKEN_SERVER_STORE_BACKUP_FILE_H_
#define SESSIONTOKEN_SERVER_STORE_BACKUP_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/sealer.h"
#include "sessiontoken/v1/keyring.pb.h"

namespace sessiontoken::store {

// The first line of every backup file.
inline constexpr absl::string_view kBackupMagic = "sessiontoken-backup v1\n";

// The bytes the HMAC covers: every field but the MAC, in a fixed length-prefixed encoding
// (independent of protobuf serialization).
std::string BackupMacInput(const v1::BackupFile& backup);

// Sets backup->mac_kek_fingerprint and backup->mac with `sealer`'s current KEK.
void SignBackup(const Sealer& sealer, v1::BackupFile* backup);

// The file's content: magic line, serialized message, SHA-256 of both. *sha256_hex (optional)
// receives the trailer in hex.
std::string EncodeBackupFile(const v1::BackupFile& backup, std::string* sha256_hex = nullptr);

// Parses a file's content. DataLoss (nothing else read) when it is not a backup, is
// truncated or damaged (SHA-256 mismatch), or does not parse. Does not check the MAC.
absl::StatusOr<v1::BackupFile> DecodeBackupFile(absl::string_view content);

// Checks the MAC (any KEK of `sealer`) and that every keyring opens with `sealer` at the
// revision the backup states, and each of its revocation shards as a shard of that keyring.
// FailedPrecondition naming the fingerprint of a KEK `sealer` lacks; DataLoss for an altered
// backup.
absl::Status CheckBackup(const Sealer& sealer, const v1::BackupFile& backup);

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_BACKUP_FILE_H_
