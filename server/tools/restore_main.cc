// sessiontoken-restore: restores a backup file (sessiontoken backup FILE) into a file data dir
// or etcd, offline, with the KEK the backup was sealed with. It checks the whole file first
// (SHA-256, HMAC, every keyring opens), prints what it will do per keyring, and writes
// nothing when a keyring exists (or existed) in the store unless --overwrite; --dry_run only
// prints. Why offline: docs/operations.md, "Backup and restore".
//   sessiontoken-restore --backup=FILE --to=file:/var/lib/sessiontoken --kek_file=KEK
//   sessiontoken-restore --backup=FILE --to=etcd --etcd_endpoints=h:p,... --kek_file=KEK
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "server/engine/audit.h"
#include "server/engine/restore.h"
#include "server/store/backup_file.h"
#include "server/store/sealer.h"
#include "server/tools/tool_store.h"

ABSL_FLAG(std::string, backup, "", "The backup file to restore");
ABSL_FLAG(std::string, to, "", "Destination store: file:<data_dir> or etcd");
ABSL_FLAG(std::string, kek_file, "", "File holding the KEK (else $SESSIONTOKEN_KEK)");
ABSL_FLAG(std::vector<std::string>, previous_kek_files, {},
          "Further KEK files: keyrings of the backup sealed with them open too (written back "
          "sealed with --kek_file's KEK)");
ABSL_FLAG(bool, overwrite, false,
          "Replace keyrings the store holds or held (keys destroyed since come back: read the "
          "REPLACE lines)");
ABSL_FLAG(bool, dry_run, false, "Check the backup and print the plan; write nothing");
ABSL_FLAG(std::string, audit_log, "", "Append one JSON line per restored keyring to this file");

namespace sessiontoken {
namespace {

absl::StatusOr<std::unique_ptr<store::Sealer>> OpenSealer() {
  absl::StatusOr<std::optional<crypto::SecretBytes>> env =
      store::TakeKekFromEnv("SESSIONTOKEN_KEK");
  absl::StatusOr<crypto::SecretBytes> kek =
      !absl::GetFlag(FLAGS_kek_file).empty() ? store::LoadKekFile(absl::GetFlag(FLAGS_kek_file))
      : !env.ok()                            ? absl::StatusOr<crypto::SecretBytes>(env.status())
      : env->has_value()
          ? absl::StatusOr<crypto::SecretBytes>(std::move(**env))
          : absl::FailedPreconditionError("no KEK: pass --kek_file=PATH or set SESSIONTOKEN_KEK");
  if (!kek.ok()) return kek.status();
  std::vector<crypto::SecretBytes> previous;
  for (const std::string& path : absl::GetFlag(FLAGS_previous_kek_files)) {
    absl::StatusOr<crypto::SecretBytes> k = store::LoadKekFile(path);
    if (!k.ok()) return k.status();
    previous.push_back(*std::move(k));
  }
  return store::Sealer::New(*std::move(kek), std::move(previous));
}

absl::StatusOr<v1::BackupFile> ReadBackup(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<v1::BackupFile> b = store::DecodeBackupFile(content);
  if (!b.ok())
    return absl::Status(b.status().code(), absl::StrCat(path, ": ", b.status().message()));
  return b;
}

int Fail(absl::string_view what, const absl::Status& s) {
  std::fprintf(stderr, "sessiontoken-restore: %.*s: %s\n", static_cast<int>(what.size()),
               what.data(), std::string(s.message()).c_str());
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int Run() {
  if (absl::GetFlag(FLAGS_backup).empty() || absl::GetFlag(FLAGS_to).empty()) {
    return Fail("usage", absl::InvalidArgumentError("--backup and --to are required"));
  }
  absl::StatusOr<std::unique_ptr<store::Sealer>> sealer = OpenSealer();
  if (!sealer.ok()) return Fail("KEK", sealer.status());
  absl::StatusOr<v1::BackupFile> backup = ReadBackup(absl::GetFlag(FLAGS_backup));
  if (!backup.ok()) return Fail("backup refused, nothing written", backup.status());
  absl::StatusOr<std::unique_ptr<store::Store>> to = store::OpenStore(absl::GetFlag(FLAGS_to));
  if (!to.ok()) return Fail("--to", to.status());
  absl::StatusOr<engine::RestorePlan> plan = engine::PlanRestore(**to, **sealer, *backup);
  if (!plan.ok()) return Fail("backup refused, nothing written", plan.status());
  std::printf("backup of %zu keyrings taken %s from a %s store (KEK %s)\n", plan->items.size(),
              absl::FormatTime(absl::FromUnixSeconds(backup->created_unix())).c_str(),
              backup->store().c_str(), backup->mac_kek_fingerprint().c_str());
  for (const engine::RestoreItem& item : plan->items) std::printf("%s\n", item.description.c_str());
  std::fflush(stdout);
  if (absl::GetFlag(FLAGS_dry_run)) return 0;
  std::unique_ptr<engine::JsonLinesAuditLog> audit;
  if (const std::string path = absl::GetFlag(FLAGS_audit_log); !path.empty()) {
    absl::StatusOr<std::unique_ptr<engine::JsonLinesAuditLog>> a =
        engine::JsonLinesAuditLog::Open(path);
    if (!a.ok()) return Fail("--audit_log", a.status());
    audit = *std::move(a);
  }
  engine::RestoreOptions options;
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  options.caller = absl::StrCat("sessiontoken-restore (uid ", ::getuid(), ")");
  options.audit = audit.get();
  if (absl::Status s = engine::ApplyRestore(**to, **sealer, *plan, options); !s.ok()) {
    return Fail("restore refused", s);
  }
  std::printf("restored %zu keyrings (sealed with KEK %s)\n", plan->items.size(),
              (*sealer)->fingerprint().c_str());
  return 0;
}

}  // namespace
}  // namespace sessiontoken

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Restores a sessiontoken backup: --backup=FILE --to=file:<dir>|etcd --kek_file=KEK "
      "[--overwrite] [--dry_run]");
  absl::ParseCommandLine(argc, argv);
  return sessiontoken::Run();
}
