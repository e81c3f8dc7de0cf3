#include "server/store/sealer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "server/crypto/hmac.h"
#include "server/crypto/random.h"
#include "server/keyring/stored_form.h"
#include "sessiontoken/v1/keyring.pb.h"

namespace sessiontoken::store {
namespace {

// Sealed blob: "STK1" | KEK fingerprint (8) | nonce (12) | ciphertext | tag (16).
// Sealed keyring: "STK2" | KEK fingerprint (8) | revision (8, big-endian) | AES-GCM, the
// revision bound into the associated data. "STK1" (no revision) is still read.
constexpr absl::string_view kMagic = "STK2";
constexpr absl::string_view kLegacyMagic = "STK1";
// Sealed high-water mark: "STM1" | KEK fingerprint (8) | AES-GCM(revision (8)).
constexpr absl::string_view kMarkMagic = "STM1";
// Sealed revocation shard: "STR1" | KEK fingerprint (8) | AES-GCM(StoredRevocations).
constexpr absl::string_view kRevocationsMagic = "STR1";
constexpr size_t kRevisionSize = 8;
constexpr size_t kFingerprintSize = 8;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void WipeStored(v1::StoredKeyring* stored) {
  for (v1::StoredKey& k : *stored->mutable_keys()) {
    crypto::SecureWipe(k.mutable_material()->data(), k.material().size());
  }
}

// The keyring in a decrypted record (wiped once parsed): its name must be `name` and, when
// the header carried one, its revision `revision`.
absl::StatusOr<std::shared_ptr<const keyring::Keyring>> Parse(absl::string_view name,
                                                              std::optional<uint64_t> revision,
                                                              crypto::SecretBytes* plain) {
  v1::StoredKeyring stored;
  bool parsed = stored.ParseFromArray(plain->data(), static_cast<int>(plain->size()));
  plain->Clear();
  absl::Status bad;
  if (!parsed) {
    bad = absl::DataLossError(absl::StrCat("keyring ", name, ": cannot parse stored form"));
  } else if (stored.name() != name) {
    bad = absl::DataLossError(absl::StrCat("keyring ", name, ": stored name mismatch"));
  } else if (revision.has_value() && stored.revision() != *revision) {
    bad = absl::DataLossError(absl::StrCat("keyring ", name, ": stored revision mismatch"));
  }
  if (!bad.ok()) {
    WipeStored(&stored);
    return bad;
  }
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = keyring::FromStored(&stored);
  WipeStored(&stored);
  if (!kr.ok()) {
    return absl::DataLossError(absl::StrCat("keyring ", name, ": ", kr.status().message()));
  }
  return kr;
}

// Refuses a KEK file that anyone but its owner may read or replace (checked on the open
// file, so a file swapped after the check is not read instead).
absl::Status CheckKekFileMode(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot stat KEK file ", path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "KEK file %s is accessible by group or others (mode %04o): make it private to the "
        "server's user with: chmod 600 %s (a Kubernetes Secret volume: defaultMode: 0400)",
        path, st.st_mode & 07777, path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read KEK file ", path, ": ", std::strerror(errno)));
  }
  if (absl::Status s = CheckKekFileMode(fd, path); !s.ok()) {
    ::close(fd);
    return s;
  }
  std::string content(4096, '\0');
  ssize_t n = ::read(fd, content.data(), content.size());
  ::close(fd);
  if (n < 0) {
    crypto::SecureWipe(content.data(), content.size());
    return absl::FailedPreconditionError(absl::StrCat("cannot read KEK file ", path));
  }
  content.resize(static_cast<size_t>(n));
  return content;
}

}  // namespace

absl::StatusOr<crypto::SecretBytes> ParseKek(absl::string_view text) {
  // Only encoded forms: a raw 32-byte file is indistinguishable from a 32-character
  // passphrase or a truncated hex KEK, which must be refused, not silently used.
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (t.size() == 64) {
    crypto::SecretBytes kek(32);
    bool ok = true;
    for (size_t i = 0; i < 32; ++i) {
      int hi = HexValue(t[2 * i]), lo = HexValue(t[2 * i + 1]);
      if (hi < 0 || lo < 0) ok = false;
      kek.data()[i] = static_cast<uint8_t>((hi << 4) | (lo & 0xf));
    }
    if (ok) return kek;
  }
  std::string decoded;
  if ((absl::Base64Unescape(t, &decoded) || absl::WebSafeBase64Unescape(t, &decoded)) &&
      decoded.size() == crypto::Aes256Gcm::kKeySize) {
    crypto::SecretBytes kek = crypto::SecretBytes::CopyFrom(decoded);
    crypto::SecureWipe(decoded.data(), decoded.size());
    return kek;
  }
  crypto::SecureWipe(decoded.data(), decoded.size());
  return absl::InvalidArgumentError(
      "KEK must be 32 random bytes written as 64 hex characters or base64 "
      "(e.g. openssl rand -hex 32)");
}

absl::StatusOr<crypto::SecretBytes> LoadKekFile(const std::string& path) {
  absl::StatusOr<std::string> content = ReadSmallFile(path);
  if (!content.ok()) return content.status();
  absl::StatusOr<crypto::SecretBytes> kek = ParseKek(*content);
  crypto::SecureWipe(content->data(), content->size());
  if (!kek.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("KEK file ", path, ": ", kek.status().message()));
  }
  return kek;
}

absl::StatusOr<crypto::SecretBytes> LoadOrCreateDevKek(const std::string& path, bool* created) {
  *created = false;
  if (::access(path.c_str(), F_OK) == 0) return LoadKekFile(path);
  crypto::SecretBytes kek = crypto::RandomSecret(crypto::Aes256Gcm::kKeySize);
  // Hex and newline written into one buffer of the final size: nothing is reallocated, so
  // no unwiped copy of the KEK is left behind in freed memory.
  crypto::SecretBytes hex(2 * kek.size() + 1);
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < kek.size(); ++i) {
    hex.data()[2 * i] = static_cast<uint8_t>(kDigits[kek.data()[i] >> 4]);
    hex.data()[2 * i + 1] = static_cast<uint8_t>(kDigits[kek.data()[i] & 0xf]);
  }
  hex.data()[hex.size() - 1] = '\n';
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  hex.Clear();
  if (!ok) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create development KEK file ", path, ": ", std::strerror(errno)));
  }
  *created = true;
  return kek;
}

absl::StatusOr<std::optional<crypto::SecretBytes>> TakeKekFromEnv(const std::string& name) {
  if (name.empty()) return std::nullopt;
  char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  const size_t n = std::strlen(v);
  absl::StatusOr<crypto::SecretBytes> kek =
      n == 0 ? absl::InvalidArgumentError("empty") : ParseKek(absl::string_view(v, n));
  // Wiped in place (this is also the process's initial environment block, which
  // /proc/<pid>/environ shows) and removed from the environment, used or not.
  crypto::SecureWipe(v, n);
  ::unsetenv(name.c_str());
  if (n == 0) return std::nullopt;
  if (!kek.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment variable ", name, ": ", kek.status().message()));
  }
  return std::optional<crypto::SecretBytes>(*std::move(kek));
}

struct Sealer::Kek {
  std::unique_ptr<crypto::Aes256Gcm> aead;
  std::unique_ptr<crypto::Hmac> backup_mac;  // keyed with a KEK-derived key
  std::string fp_raw;
  std::string fp_hex;
};

Sealer::Sealer(std::vector<std::unique_ptr<Kek>> keks) : keks_(std::move(keks)) {}
Sealer::~Sealer() = default;

namespace {

// Derives the fingerprint and the backup MAC key from `kek` (HMAC-SHA256 with fixed labels).
absl::StatusOr<std::unique_ptr<Sealer::Kek>> MakeKek(const crypto::SecretBytes& kek);

}  // namespace

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::New(crypto::SecretBytes kek) {
  return New(std::move(kek), {});
}

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::New(crypto::SecretBytes current,
                                                    std::vector<crypto::SecretBytes> previous) {
  std::vector<std::unique_ptr<Kek>> keks;
  previous.insert(previous.begin(), std::move(current));
  for (size_t i = 0; i < previous.size(); ++i) {
    absl::StatusOr<std::unique_ptr<Kek>> k = MakeKek(previous[i]);
    if (!k.ok()) return k.status();
    for (const auto& other : keks) {
      if (other->fp_raw == (*k)->fp_raw) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the KEK of fingerprint ", (*k)->fp_hex, " is given twice (",
            other == keks.front() ? "as the current and as a previous KEK" : "as two previous KEKs",
            "): list each KEK once"));
      }
    }
    keks.push_back(*std::move(k));
  }
  return std::unique_ptr<Sealer>(new Sealer(std::move(keks)));
}

namespace {

absl::StatusOr<std::unique_ptr<Sealer::Kek>> MakeKek(const crypto::SecretBytes& kek) {
  auto k = std::make_unique<Sealer::Kek>();
  absl::StatusOr<std::unique_ptr<crypto::Aes256Gcm>> aead = crypto::Aes256Gcm::New(kek.view());
  if (!aead.ok()) return aead.status();
  k->aead = *std::move(aead);
  absl::StatusOr<std::unique_ptr<crypto::Hmac>> derive =
      crypto::Hmac::New(crypto::HashFunction::kSha256, kek.view());
  if (!derive.ok()) return derive.status();
  uint8_t out[32];
  (*derive)->Compute({"sessiontoken kek fingerprint v1"}, out);
  k->fp_raw.assign(reinterpret_cast<const char*>(out), kFingerprintSize);
  k->fp_hex = absl::BytesToHexString(k->fp_raw);
  (*derive)->Compute({"sessiontoken backup mac v1"}, out);
  absl::StatusOr<std::unique_ptr<crypto::Hmac>> mac = crypto::Hmac::New(
      crypto::HashFunction::kSha256, absl::string_view(reinterpret_cast<char*>(out), 32));
  crypto::SecureWipe(out, sizeof(out));
  if (!mac.ok()) return mac.status();
  k->backup_mac = *std::move(mac);
  return k;
}

std::string Be64(uint64_t v) {
  std::string out(kRevisionSize, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}
uint64_t FromBe64(absl::string_view b) {
  uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// The associated data of a record: its magic and KEK fingerprint, bound to its name (and
// revision, for keyrings of format STK2).
std::string Aad(absl::string_view magic, absl::string_view fp_raw, absl::string_view name,
                absl::string_view revision) {
  if (magic == kLegacyMagic) return absl::StrCat(magic, fp_raw, "keyring:", name);
  if (magic == kMarkMagic) return absl::StrCat(magic, fp_raw, "mark:", name);
  if (magic == kRevocationsMagic) return absl::StrCat(magic, fp_raw, "revocations:", name);
  return absl::StrCat(magic, fp_raw, revision, "keyring:", name);
}

bool KnownMagic(absl::string_view blob) {
  absl::string_view magic = blob.substr(0, 4);
  return blob.size() >= 4 + kFingerprintSize && (magic == kMagic || magic == kLegacyMagic ||
                                                 magic == kMarkMagic || magic == kRevocationsMagic);
}

}  // namespace

const std::string& Sealer::fingerprint() const { return keks_.front()->fp_hex; }

std::vector<std::string> Sealer::previous_fingerprints() const {
  std::vector<std::string> out;
  for (size_t i = 1; i < keks_.size(); ++i) out.push_back(keks_[i]->fp_hex);
  return out;
}

const Sealer::Kek* Sealer::Find(absl::string_view fp) const {
  for (const auto& k : keks_) {
    if (k->fp_raw == fp) return k.get();
  }
  return nullptr;
}

absl::StatusOr<std::string> Sealer::FingerprintOf(absl::string_view blob) {
  if (!KnownMagic(blob)) return absl::DataLossError("not a sealed record");
  return absl::BytesToHexString(blob.substr(4, kFingerprintSize));
}

bool Sealer::SealedWithCurrent(absl::string_view blob) const {
  return KnownMagic(blob) && blob.substr(4, kFingerprintSize) == keks_.front()->fp_raw;
}

std::string Sealer::MissingKek(absl::string_view what, absl::string_view fp_hex) const {
  std::vector<std::string> prev = previous_fingerprints();
  return absl::StrCat(what, " is sealed with a different KEK (fingerprint ", fp_hex,
                      "), which this server does not have (current KEK: fingerprint ",
                      fingerprint(),
                      "; previous KEKs: ", prev.empty() ? "none" : absl::StrJoin(prev, ", "),
                      "). Give the KEK of fingerprint ", fp_hex,
                      " as --kek_file, or in --previous_kek_files while a KEK rotation is in "
                      "progress");
}

absl::Status Sealer::CheckKek(absl::string_view what, absl::string_view blob) const {
  if (!KnownMagic(blob) || Find(blob.substr(4, kFingerprintSize)) != nullptr) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      MissingKek(what, absl::BytesToHexString(blob.substr(4, kFingerprintSize))));
}

absl::StatusOr<const Sealer::Kek*> Sealer::CheckHeader(absl::string_view what,
                                                       absl::string_view name,
                                                       absl::string_view blob,
                                                       absl::string_view* magic) const {
  *magic = blob.substr(0, 4);
  if (!KnownMagic(blob)) {
    return absl::DataLossError(absl::StrCat(what, " ", name, ": not a sealed record"));
  }
  const Kek* kek = Find(blob.substr(4, kFingerprintSize));
  if (kek == nullptr) {
    return absl::FailedPreconditionError(MissingKek(
        absl::StrCat(what, " ", name), absl::BytesToHexString(blob.substr(4, kFingerprintSize))));
  }
  return kek;
}

absl::StatusOr<std::string> Sealer::SealMark(absl::string_view name, uint64_t revision) const {
  const Kek& k = *keks_.front();
  absl::StatusOr<std::string> ct =
      k.aead->Encrypt(Be64(revision), Aad(kMarkMagic, k.fp_raw, name, ""));
  if (!ct.ok()) return ct.status();
  return absl::StrCat(kMarkMagic, k.fp_raw, *ct);
}

absl::StatusOr<uint64_t> Sealer::OpenMark(absl::string_view name, absl::string_view blob) const {
  absl::string_view magic;
  absl::StatusOr<const Kek*> k = CheckHeader("high-water mark of keyring", name, blob, &magic);
  if (!k.ok()) return k.status();
  absl::StatusOr<crypto::SecretBytes> plain =
      magic != kMarkMagic ? absl::DataLossError("not a mark")
                          : (*k)->aead->Decrypt(blob.substr(4 + kFingerprintSize),
                                                Aad(kMarkMagic, (*k)->fp_raw, name, ""));
  if (!plain.ok() || plain->size() != kRevisionSize) {
    return absl::DataLossError(absl::StrCat("high-water mark of keyring ", name,
                                            ": authentication failed (corrupt or altered)"));
  }
  return FromBe64(plain->view());
}

absl::StatusOr<std::string> Sealer::SealRevocations(absl::string_view record,
                                                    absl::string_view plain) const {
  const Kek& k = *keks_.front();
  absl::StatusOr<std::string> ct =
      k.aead->Encrypt(plain, Aad(kRevocationsMagic, k.fp_raw, record, ""));
  if (!ct.ok()) return ct.status();
  return absl::StrCat(kRevocationsMagic, k.fp_raw, *ct);
}

absl::StatusOr<std::string> Sealer::OpenRevocations(absl::string_view record,
                                                    absl::string_view blob) const {
  absl::string_view magic;
  absl::StatusOr<const Kek*> k = CheckHeader("revocations", record, blob, &magic);
  if (!k.ok()) return k.status();
  if (magic != kRevocationsMagic) {
    return absl::DataLossError(absl::StrCat("revocations ", record, ": not a revocation record"));
  }
  absl::StatusOr<crypto::SecretBytes> plain = (*k)->aead->Decrypt(
      blob.substr(4 + kFingerprintSize), Aad(kRevocationsMagic, (*k)->fp_raw, record, ""));
  if (!plain.ok()) {
    return absl::DataLossError(
        absl::StrCat("revocations ", record, ": authentication failed (corrupt or altered)"));
  }
  return std::string(plain->view());
}

absl::StatusOr<std::string> Sealer::Seal(const keyring::Keyring& keyring) const {
  const Kek& k = *keks_.front();
  v1::StoredKeyring stored;
  keyring::ToStored(keyring, &stored);
  crypto::SecretBytes plain(stored.ByteSizeLong());
  bool ok = stored.SerializeToArray(plain.data(), static_cast<int>(plain.size()));
  WipeStored(&stored);
  if (!ok) return absl::InternalError("cannot serialize keyring");
  const std::string revision = Be64(keyring.revision());
  absl::StatusOr<std::string> ct =
      k.aead->Encrypt(plain.view(), Aad(kMagic, k.fp_raw, keyring.name(), revision));
  if (!ct.ok()) return ct.status();
  return absl::StrCat(kMagic, k.fp_raw, revision, *ct);
}

absl::StatusOr<std::shared_ptr<const keyring::Keyring>> Sealer::Open(absl::string_view name,
                                                                     absl::string_view blob) const {
  absl::string_view magic;
  absl::StatusOr<const Kek*> k = CheckHeader("keyring", name, blob, &magic);
  if (!k.ok()) return k.status();
  if (magic == kMarkMagic || magic == kRevocationsMagic) {
    return absl::DataLossError(absl::StrCat("keyring ", name, ": not a sealed keyring"));
  }
  blob.remove_prefix(4 + kFingerprintSize);
  absl::string_view revision;  // authenticated as associated data (STK2)
  if (magic == kMagic) {
    if (blob.size() < kRevisionSize) {
      return absl::DataLossError(absl::StrCat("keyring ", name, ": truncated"));
    }
    revision = blob.substr(0, kRevisionSize);
    blob.remove_prefix(kRevisionSize);
  }
  absl::StatusOr<crypto::SecretBytes> plain =
      (*k)->aead->Decrypt(blob, Aad(magic, (*k)->fp_raw, name, revision));
  if (!plain.ok()) {
    return absl::DataLossError(absl::StrCat(
        "keyring ", name, ": authentication failed (the stored data is corrupt or was altered)"));
  }
  return Parse(name, magic == kMagic ? std::optional<uint64_t>(FromBe64(revision)) : std::nullopt,
               &*plain);
}

std::string Sealer::BackupMac(absl::string_view data) const {
  std::string mac(32, '\0');
  keks_.front()->backup_mac->Compute({data}, reinterpret_cast<uint8_t*>(mac.data()));
  return mac;
}

absl::Status Sealer::CheckBackupMac(absl::string_view fingerprint_hex, absl::string_view data,
                                    absl::string_view mac) const {
  for (const auto& k : keks_) {
    if (k->fp_hex != fingerprint_hex) continue;
    if (k->backup_mac->Verify({data}, mac)) return absl::OkStatus();
    return absl::DataLossError(
        "backup: authentication failed (the HMAC does not match: altered, or not a backup "
        "made by sessiontoken)");
  }
  return absl::FailedPreconditionError(MissingKek("the backup", fingerprint_hex));
}

}  // namespace sessiontoken::store
