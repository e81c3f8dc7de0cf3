#include "server/store/backup_file.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/hmac.h"

namespace sessiontoken::store {
namespace {

constexpr size_t kShaSize = 32;

void AppendU64(uint64_t v, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void AppendBytes(absl::string_view b, std::string* out) {
  AppendU64(b.size(), out);
  out->append(b.data(), b.size());
}

std::string Sha256(absl::string_view data) {
  uint8_t out[kShaSize];
  crypto::Sha256(data, out);
  return std::string(reinterpret_cast<const char*>(out), kShaSize);
}

}  // namespace

std::string BackupMacInput(const v1::BackupFile& backup) {
  std::string in = "sessiontoken backup mac input v1";
  AppendU64(static_cast<uint64_t>(backup.created_unix()), &in);
  AppendBytes(backup.store(), &in);
  AppendU64(backup.keyrings_size(), &in);
  for (const v1::BackupFile::Keyring& k : backup.keyrings()) {
    AppendBytes(k.name(), &in);
    AppendU64(k.revision(), &in);
    AppendBytes(k.kek_fingerprint(), &in);
    AppendBytes(k.sealed(), &in);
    AppendU64(k.revocations_size(), &in);
    for (const v1::BackupFile::Revocations& r : k.revocations()) {
      AppendBytes(r.record(), &in);
      AppendBytes(r.kek_fingerprint(), &in);
      AppendBytes(r.sealed(), &in);
    }
  }
  AppendBytes(backup.mac_kek_fingerprint(), &in);
  return in;
}

void SignBackup(const Sealer& sealer, v1::BackupFile* backup) {
  backup->set_mac_kek_fingerprint(sealer.fingerprint());
  backup->set_mac(sealer.BackupMac(BackupMacInput(*backup)));
}

std::string EncodeBackupFile(const v1::BackupFile& backup, std::string* sha256_hex) {
  std::string out(kBackupMagic);
  backup.AppendToString(&out);
  const std::string sha = Sha256(out);
  if (sha256_hex != nullptr) *sha256_hex = absl::BytesToHexString(sha);
  return out + sha;
}

absl::StatusOr<v1::BackupFile> DecodeBackupFile(absl::string_view content) {
  if (!absl::StartsWith(content, kBackupMagic)) {
    return absl::DataLossError(
        "not a sessiontoken backup file (no \"sessiontoken-backup v1\" line)");
  }
  if (content.size() < kBackupMagic.size() + kShaSize) {
    return absl::DataLossError("backup file truncated");
  }
  const absl::string_view body = content.substr(0, content.size() - kShaSize);
  if (Sha256(body) != content.substr(body.size())) {
    return absl::DataLossError(
        "backup file damaged: its SHA-256 does not match (truncated, or changed since it was "
        "written); nothing was read from it");
  }
  v1::BackupFile backup;
  const absl::string_view message = body.substr(kBackupMagic.size());
  if (!backup.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    return absl::DataLossError("backup file does not parse");
  }
  return backup;
}

namespace {

// Every revocation shard of keyring `k` opens with `sealer` as a shard of that keyring.
absl::Status CheckRevocations(const Sealer& sealer, const v1::BackupFile::Keyring& k) {
  const std::string prefix = absl::StrCat(kRevocationRecordPrefix, k.name(), ".");
  for (const v1::BackupFile::Revocations& r : k.revocations()) {
    absl::StatusOr<std::string> plain = sealer.OpenRevocations(r.record(), r.sealed());
    if (!plain.ok()) {
      return absl::Status(plain.status().code(),
                          absl::StrCat("backup: ", plain.status().message()));
    }
    v1::StoredRevocations stored;
    if (!absl::StartsWith(r.record(), prefix) || !stored.ParseFromString(*plain) ||
        stored.keyring() != k.name()) {
      return absl::DataLossError(absl::StrCat("backup: revocations ", r.record(),
                                              " are not a revocation list of keyring ", k.name()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckBackup(const Sealer& sealer, const v1::BackupFile& backup) {
  if (absl::Status s =
          sealer.CheckBackupMac(backup.mac_kek_fingerprint(), BackupMacInput(backup), backup.mac());
      !s.ok()) {
    return s;
  }
  for (const v1::BackupFile::Keyring& k : backup.keyrings()) {
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = sealer.Open(k.name(), k.sealed());
    if (!kr.ok()) {
      return absl::Status(kr.status().code(), absl::StrCat("backup: ", kr.status().message()));
    }
    if ((*kr)->revision() != k.revision()) {
      return absl::DataLossError(absl::StrCat("backup: keyring ", k.name(), " holds revision ",
                                              (*kr)->revision(), ", not ", k.revision()));
    }
    if (absl::Status s = CheckRevocations(sealer, k); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace sessiontoken::store
