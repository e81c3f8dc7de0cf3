// The KEK side of Engine (engine.h): rewrapping every stored record with the current KEK,
// replacing the KEK configuration at run time, refusing a replica start with a KEK that does
// not open the store, and exporting a backup of the sealed keyrings.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/engine/engine.h"
#include "server/engine/revocations.h"
#include "server/engine/writer_guard.h"
#include "server/store/backup_file.h"

namespace sessiontoken::engine {
namespace {

constexpr absl::string_view kMarkPrefix = "_mark.";  // as in engine.cc

// "keyring NAME", "high-water mark of keyring NAME" or "revocations of keyring NAME (shard
// N)" for a store record name.
std::string Describe(absl::string_view record) {
  if (absl::StartsWith(record, kMarkPrefix)) {
    return absl::StrCat("high-water mark of keyring ", record.substr(kMarkPrefix.size()));
  }
  if (std::optional<RevocationRecord> r = ParseRevocationRecordName(record)) {
    return absl::StrCat("revocations of keyring ", r->keyring, " (shard ", r->shard, ")");
  }
  return absl::StrCat("keyring ", record);
}

bool IsKeyringRecord(absl::string_view record) {
  return !absl::StartsWith(record, kMarkPrefix) && !absl::StartsWith(record, kRevocationPrefix);
}

}  // namespace

std::string Engine::kek_fingerprint() const {
  absl::MutexLock lock(&write_mu_);
  return sealer_->fingerprint();
}

std::vector<std::string> Engine::previous_kek_fingerprints() const {
  absl::MutexLock lock(&write_mu_);
  return sealer_->previous_fingerprints();
}

absl::Status Engine::startup_failure() const {
  absl::MutexLock lock(&write_mu_);
  return startup_failure_;
}

void Engine::AuditAll(const Actor& caller, absl::string_view operation,
                      absl::string_view outcome) const {
  if (options_.audit_log == nullptr) return;
  AuditEvent e = NewAuditEvent(caller, operation, "*");
  e.outcome = std::string(outcome);
  options_.audit_log->Record(e);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Engine::StoredKeyrings() {
  std::vector<std::pair<std::string, std::string>> out;
  if (replicated_ != nullptr) {
    absl::StatusOr<store::StoreSnapshot> snap = replicated_->LoadAll();
    if (!snap.ok()) return snap.status();
    for (store::KeyringRecord& r : snap->keyrings) {
      if (!r.status.ok())
        return absl::Status(r.status.code(),
                            Describe(r.name) + ": " + std::string(r.status.message()));
      out.emplace_back(r.name, std::move(r.blob.data));
    }
    return out;
  }
  absl::StatusOr<std::vector<std::string>> names = store_->List();
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    absl::StatusOr<store::VersionedBlob> blob = store_->Get(name);
    if (absl::IsNotFound(blob.status())) continue;
    if (!blob.ok()) return blob.status();
    out.emplace_back(name, std::move(blob->data));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Engine::NotCurrent() {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> records = StoredKeyrings();
  if (!records.ok()) return records.status();
  std::vector<std::string> out;
  for (const auto& [name, blob] : *records) {
    if (sealer_->SealedWithCurrent(blob)) continue;
    absl::StatusOr<std::string> fp = store::Sealer::FingerprintOf(blob);
    out.push_back(absl::StrCat(Describe(name), ": ",
                               fp.ok() ? absl::StrCat("sealed with KEK ", *fp)
                                       : std::string("not a sealed record (damaged)")));
  }
  return out;
}

absl::StatusOr<bool> Engine::RewrapOne(const Actor& caller, const std::string& name) {
  absl::StatusOr<store::VersionedBlob> blob = store_->Get(name);
  if (absl::IsNotFound(blob.status())) return false;
  if (!blob.ok()) return blob.status();
  bool current;
  {
    absl::MutexLock lock(&write_mu_);
    current = sealer_->SealedWithCurrent(blob->data);
  }
  bool rewrapped = false;
  if (!current) {
    // A new revision of the same keys, sealed (as every write) with the current KEK; its
    // mark follows (Commit).
    absl::StatusOr<AdminOutcome> r = MutateExisting(
        caller, "rewrap", name, 0,
        [](const keyring::Keyring& k, AdminOutcome*) { return k.Next(k.keys(), k.policy()); });
    if (!r.ok()) return r.status();
    rewrapped = true;
  }
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<std::optional<Mark>> mark = ReadMark(name);
  if (!mark.ok() || !mark->has_value() || (*mark)->current_kek || !(*mark)->damage.ok()) {
    return rewrapped;
  }
  absl::StatusOr<Entry> held = Lookup(name);
  const uint64_t revision =
      std::max((*mark)->revision, held.ok() ? held->keyring().revision() : uint64_t{0});
  if (absl::Status s = WriteMark(name, revision, *mark); !s.ok() && !absl::IsAborted(s)) return s;
  return rewrapped;
}

absl::StatusOr<bool> Engine::RewrapShard(const Actor& caller, const std::string& record) {
  std::optional<RevocationRecord> parsed = ParseRevocationRecordName(record);
  absl::StatusOr<store::VersionedBlob> blob = store_->Get(record);
  if (!parsed.has_value() || absl::IsNotFound(blob.status())) return false;
  if (!blob.ok()) return blob.status();
  {
    absl::MutexLock lock(&write_mu_);
    if (sealer_->SealedWithCurrent(blob->data)) return false;
  }
  // The shard as held, written again: CommitShard seals every write with the current KEK.
  bool rewrapped = false;
  absl::Status s = ChangeShard(
      std::min(caller.deadline, absl::Now() + options_.admin_wait), parsed->keyring, parsed->shard,
      [&](const RevocationList&,
          const RevocationShard& shard) -> absl::StatusOr<std::shared_ptr<RevocationShard>> {
        rewrapped = true;
        return std::make_shared<RevocationShard>(shard);
      });
  if (absl::IsNotFound(s)) return false;  // a shard of a keyring no longer stored
  if (!s.ok()) return s;
  return rewrapped;
}

absl::StatusOr<RewrapReport> Engine::RewrapKeyrings(const Actor& caller) {
  RewrapReport report;
  report.kek_fingerprint = kek_fingerprint();
  report.previous_fingerprints = previous_kek_fingerprints();
  absl::StatusOr<std::vector<std::string>> names = store_->List();
  absl::Status failed = names.status();
  for (const std::string& name : names.ok() ? *names : std::vector<std::string>()) {
    const bool keyring = IsKeyringRecord(name);
    if (!keyring && !ParseRevocationRecordName(name).has_value()) continue;
    ++(keyring ? report.keyrings : report.revocation_records);
    absl::StatusOr<bool> r = keyring ? RewrapOne(caller, name) : RewrapShard(caller, name);
    if (r.ok() && *r) ++(keyring ? report.rewrapped : report.revocation_records_rewrapped);
    if (!r.ok() && failed.ok()) failed = r.status();
  }
  if (failed.ok()) {
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<std::vector<std::string>> remaining = NotCurrent();
    if (remaining.ok()) report.remaining = *std::move(remaining);
    failed = remaining.status();
  }
  AuditAll(caller, "rewrap_keyrings",
           failed.ok() ? absl::StrCat(
                             "ok: ", report.rewrapped, " of ", report.keyrings, " keyrings and ",
                             report.revocation_records_rewrapped, " of ", report.revocation_records,
                             " revocation records resealed with KEK ", report.kek_fingerprint, "; ",
                             report.remaining.size(), " records under another KEK")
                       : AuditOutcome(failed));
  if (!failed.ok()) return failed;
  return report;
}

absl::Status Engine::ReplaceSealer(std::unique_ptr<store::Sealer> sealer) {
  if (sealer == nullptr) return absl::InvalidArgumentError("sealer: required");
  WriterGuard writer(this, absl::Now() + options_.admin_wait);
  if (!writer.status().ok()) return writer.status();
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> records = StoredKeyrings();
  if (!records.ok()) return records.status();
  for (const auto& [name, blob] : *records) {
    if (absl::Status s = sealer->CheckKek(Describe(name), blob); !s.ok()) return s;
  }
  sealer_ = std::move(sealer);
  return absl::OkStatus();
}

bool Engine::RefuseForeignKek(const store::StoreSnapshot& snapshot) {
  std::vector<std::string> problems;
  for (const store::KeyringRecord& r : snapshot.keyrings) {
    if (!r.status.ok()) continue;
    if (absl::Status s = sealer_->CheckKek(Describe(r.name), r.blob.data); !s.ok()) {
      problems.push_back(std::string(s.message()));
    }
  }
  if (problems.empty()) return false;
  startup_failure_ = absl::FailedPreconditionError(absl::StrCat(
      "cannot serve the keyrings in etcd: ", problems.front(),
      problems.size() > 1 ? absl::StrCat(" (and ", problems.size() - 1, " more records)") : "",
      ". Nothing was modified."));
  return true;
}

absl::Status Engine::AddToBackup(const std::vector<std::pair<std::string, std::string>>& records,
                                 v1::BackupFile* backup, std::set<std::string>* keks) const {
  std::map<std::string, v1::BackupFile::Keyring*> by_name;
  for (const auto& [name, blob] : records) {  // keyrings first: shards attach to them
    if (!IsKeyringRecord(name)) continue;
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = sealer_->Open(name, blob);
    if (!kr.ok()) return kr.status();
    v1::BackupFile::Keyring* k = backup->add_keyrings();
    k->set_name(name);
    k->set_revision((*kr)->revision());
    k->set_kek_fingerprint(*store::Sealer::FingerprintOf(blob));
    k->set_sealed(blob);
    keks->insert(k->kek_fingerprint());
    by_name[name] = k;
  }
  for (const auto& [name, blob] : records) {
    std::optional<RevocationRecord> r = ParseRevocationRecordName(name);
    auto it = r.has_value() ? by_name.find(r->keyring) : by_name.end();
    if (it == by_name.end()) continue;  // not a shard, or of a keyring no longer stored
    // Opened here so that a damaged list fails the backup now, not the restore later.
    if (absl::StatusOr<std::string> plain = sealer_->OpenRevocations(name, blob); !plain.ok()) {
      return plain.status();
    }
    v1::BackupFile::Revocations* rev = it->second->add_revocations();
    rev->set_record(name);
    rev->set_kek_fingerprint(*store::Sealer::FingerprintOf(blob));
    rev->set_sealed(blob);
    keks->insert(rev->kek_fingerprint());
  }
  return absl::OkStatus();
}

absl::StatusOr<BackupExport> Engine::ExportBackup(const Actor& caller) {
  BackupExport out;
  absl::Status failed;
  {
    WriterGuard writer(this, std::min(caller.deadline, absl::Now() + options_.admin_wait));
    failed = writer.status();
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> records =
        failed.ok() ? StoredKeyrings() : failed;
    v1::BackupFile backup;
    out.created_at = clock_->Now();
    backup.set_created_unix(absl::ToUnixSeconds(out.created_at));
    backup.set_store(replicated_ != nullptr ? "etcd" : "file");
    if (!records.ok()) failed = records.status();
    std::set<std::string> keks;
    if (failed.ok()) failed = AddToBackup(*records, &backup, &keks);
    store::SignBackup(*sealer_, &backup);
    out.file = store::EncodeBackupFile(backup, &out.sha256_hex);
    out.keyrings = backup.keyrings_size();
    for (const v1::BackupFile::Keyring& k : backup.keyrings()) {
      out.revocation_records += k.revocations_size();
    }
    out.kek_fingerprints.assign(keks.begin(), keks.end());
  }
  AuditAll(caller, "export_backup",
           failed.ok() ? absl::StrCat("ok: ", out.keyrings, " keyrings, ", out.revocation_records,
                                      " revocation records, sha256 ", out.sha256_hex)
                       : AuditOutcome(failed));
  if (!failed.ok()) return failed;
  return out;
}

}  // namespace sessiontoken::engine
