#include "server/engine/restore.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/engine/revocations.h"
#include "server/store/backup_file.h"

namespace sessiontoken::engine {
namespace {

constexpr absl::string_view kMarkPrefix = "_mark.";  // as in engine.cc

std::string StateName(keyring::KeyState s) { return v1::KeyState_Name(s); }

// What replacing `stored` by `backup` brings back and takes away, key by key.
std::string KeyChanges(const keyring::Keyring* stored, const keyring::Keyring& backup) {
  std::vector<std::string> back, gone;
  for (const auto& k : backup.keys()) {
    const keyring::Key* now = stored != nullptr ? stored->Find(k->id()) : nullptr;
    if (k->state() == v1::DESTROYED) continue;
    if (now == nullptr) {
      back.push_back(absl::StrCat(k->id(), " (", StateName(k->state()), "; not in the store)"));
    } else if (now->state() != k->state()) {
      back.push_back(absl::StrCat(k->id(), " (", StateName(now->state()), " in the store, ",
                                  StateName(k->state()), " in the backup)"));
    }
  }
  if (stored != nullptr) {
    for (const auto& k : stored->keys()) {
      if (backup.Find(k->id()) == nullptr && k->state() != v1::DESTROYED) {
        gone.push_back(absl::StrCat(k->id(), " (", StateName(k->state()), ")"));
      }
    }
  }
  std::string out;
  if (!back.empty()) absl::StrAppend(&out, "; comes back: key ", absl::StrJoin(back, ", key "));
  if (!gone.empty()) {
    absl::StrAppend(&out, "; goes away: key ", absl::StrJoin(gone, ", key "),
                    " (its tokens fail UNKNOWN_KEY)");
  }
  return out.empty() ? "; the same keys in the same states" : out;
}

// The store's record of keyring `name`, read for the plan: versions, the revision to
// stay above, and the stored keyring when it opens.
absl::Status ReadStored(store::Store& store, const store::Sealer& sealer, RestoreItem* item,
                        std::string* note, std::shared_ptr<const keyring::Keyring>* stored) {
  const std::string& name = item->backup->name();
  uint64_t floor = 0;
  absl::StatusOr<store::VersionedBlob> blob = store.Get(name);
  if (!blob.ok() && !absl::IsNotFound(blob.status())) return blob.status();
  if (blob.ok()) {
    item->store_version = blob->version;
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = sealer.Open(name, blob->data);
    if (kr.ok()) {
      *stored = *kr;
      floor = (*kr)->revision();
    } else {
      *note = absl::StrCat(" (the store's copy does not open: ", kr.status().message(), ")");
    }
  }
  absl::StatusOr<store::VersionedBlob> mark = store.Get(absl::StrCat(kMarkPrefix, name));
  if (!mark.ok() && !absl::IsNotFound(mark.status())) return mark.status();
  if (mark.ok()) {
    item->mark_version = mark->version;
    absl::StatusOr<uint64_t> m = sealer.OpenMark(name, mark->data);
    if (m.ok()) floor = std::max(floor, *m);
    if (m.ok()) absl::StrAppend(note, " (high-water mark ", *m, ")");
  }
  item->replaces = item->store_version != 0 || item->mark_version != 0;
  item->write_revision =
      item->replaces ? std::max(floor, item->backup->revision()) + 1 : item->backup->revision();
  return absl::OkStatus();
}

// The revocation shards of backup keyring `k`, opened (CheckBackup checked them).
absl::Status ReadRevocations(const store::Sealer& sealer, const v1::BackupFile::Keyring& k,
                             RestoreItem* item) {
  for (const v1::BackupFile::Revocations& r : k.revocations()) {
    absl::StatusOr<std::string> plain = sealer.OpenRevocations(r.record(), r.sealed());
    if (!plain.ok()) return plain.status();
    v1::StoredRevocations stored;
    if (!stored.ParseFromString(*plain)) {
      return absl::DataLossError(absl::StrCat("backup: revocations ", r.record(), " do not parse"));
    }
    item->revocation_entries += stored.entries_size();
    item->revocations.emplace_back(r.record(), std::move(stored));
  }
  return absl::OkStatus();
}

// Writes one revocation shard: the backup's entries and the store's (if any; the later cutoff
// or drop time of an entry in both wins), sealed with the current KEK.
absl::Status WriteShard(store::Store& store, const store::Sealer& sealer, const std::string& record,
                        v1::StoredRevocations merged) {
  absl::StatusOr<store::VersionedBlob> held = store.Get(record);
  if (!held.ok() && !absl::IsNotFound(held.status())) return held.status();
  if (held.ok()) {
    absl::StatusOr<std::string> plain = sealer.OpenRevocations(record, held->data);
    v1::StoredRevocations in_store;
    if (!plain.ok() || !in_store.ParseFromString(*plain)) {
      return absl::DataLossError(absl::StrCat(
          "the store's revocations ", record,
          " do not open, so they cannot be merged with the backup's: nothing written for them"));
    }
    for (const v1::StoredRevocation& e : in_store.entries()) *merged.add_entries() = e;
  }
  absl::StatusOr<std::shared_ptr<RevocationShard>> shard = RevocationShard::FromStored(merged, 0);
  if (!shard.ok()) return shard.status();
  v1::StoredRevocations out;
  (*shard)->ToStored(merged.keyring(), merged.shard(), &out);  // the server prunes them later
  absl::StatusOr<std::string> sealed = sealer.SealRevocations(record, out.SerializeAsString());
  if (!sealed.ok()) return sealed.status();
  return store.Put(record, *sealed, held.ok() ? held->version : 0).status();
}

}  // namespace

int RestorePlan::replacing() const {
  return static_cast<int>(
      std::count_if(items.begin(), items.end(), [](const RestoreItem& i) { return i.replaces; }));
}

absl::StatusOr<RestorePlan> PlanRestore(store::Store& store, const store::Sealer& sealer,
                                        const v1::BackupFile& backup) {
  if (absl::Status s = store::CheckBackup(sealer, backup); !s.ok()) return s;
  RestorePlan plan;
  for (const v1::BackupFile::Keyring& k : backup.keyrings()) {
    RestoreItem item;
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = sealer.Open(k.name(), k.sealed());
    if (!kr.ok()) return kr.status();  // CheckBackup opened it already
    item.backup = *kr;
    std::string note;
    std::shared_ptr<const keyring::Keyring> stored;
    if (absl::Status s = ReadStored(store, sealer, &item, &note, &stored); !s.ok()) return s;
    if (absl::Status s = ReadRevocations(sealer, k, &item); !s.ok()) return s;
    if (!item.replaces) {
      item.description = absl::StrCat("create keyring ", k.name(), " at revision ", k.revision(),
                                      " (", item.backup->keys().size(), " keys, primary ",
                                      item.backup->primary().id(), ")");
    } else {
      item.description = absl::StrCat(
          "REPLACE keyring ", k.name(), ": the store holds ",
          stored ? absl::StrCat("revision ", stored->revision()) : std::string("no keyring"), note,
          "; the backup holds revision ", k.revision(), ", written as revision ",
          item.write_revision, KeyChanges(stored.get(), *item.backup));
    }
    if (item.revocation_entries > 0) {
      absl::StrAppend(&item.description, "; ", item.revocation_entries,
                      " revocation entries, merged with the store's");
    }
    plan.items.push_back(std::move(item));
  }
  std::sort(plan.items.begin(), plan.items.end(), [](const RestoreItem& a, const RestoreItem& b) {
    return a.backup->name() < b.backup->name();
  });
  return plan;
}

namespace {

// Writes one keyring, its mark and its revocation shards.
absl::Status WriteOne(store::Store& store, const store::Sealer& sealer, const RestoreItem& item) {
  const keyring::Keyring& b = *item.backup;
  std::shared_ptr<const keyring::Keyring> kr = item.backup;
  if (item.write_revision != b.revision()) {
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> next =
        keyring::Keyring::New(b.name(), item.write_revision, b.created_at(), b.keys(), b.policy());
    if (!next.ok()) return next.status();
    kr = *next;
  }
  absl::StatusOr<std::string> sealed = sealer.Seal(*kr);
  if (!sealed.ok()) return sealed.status();
  absl::StatusOr<uint64_t> put = store.Put(b.name(), *sealed, item.store_version);
  if (!put.ok()) return put.status();
  absl::StatusOr<std::string> mark = sealer.SealMark(b.name(), item.write_revision);
  if (!mark.ok()) return mark.status();
  absl::Status s =
      store.Put(absl::StrCat(kMarkPrefix, b.name()), *mark, item.mark_version).status();
  for (const auto& [record, stored] : item.revocations) {
    if (s.ok()) s = WriteShard(store, sealer, record, stored);
  }
  return s;
}

}  // namespace

absl::Status ApplyRestore(store::Store& store, const store::Sealer& sealer, const RestorePlan& plan,
                          const RestoreOptions& options) {
  if (plan.replacing() > 0 && !options.overwrite) {
    return absl::FailedPreconditionError(absl::StrCat(
        plan.replacing(),
        " keyring(s) of the backup exist (or existed) in the store: nothing "
        "was written. Pass --overwrite to replace them (the REPLACE lines say what comes back)"));
  }
  std::vector<std::string> done;
  for (const RestoreItem& item : plan.items) {
    absl::Status s = WriteOne(store, sealer, item);
    if (options.audit != nullptr) {
      AuditEvent e;
      e.time = absl::Now();
      e.caller = options.caller;
      e.operation = item.replaces ? "restore_overwrite" : "restore";
      e.keyring = item.backup->name();
      e.revision = s.ok() ? item.write_revision : 0;
      e.outcome = AuditOutcome(s);
      options.audit->Record(e);
    }
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("keyring ", item.backup->name(), ": ", s.message(),
                                       " (already restored: [", absl::StrJoin(done, ","), "])"));
    }
    done.push_back(item.backup->name());
  }
  return absl::OkStatus();
}

}  // namespace sessiontoken::engine
