// The replica side of Engine (engine.h: NewReplica and what a replica feeds it): installing
// store snapshots and watched changes without ever replacing a good copy with a bad one,
// re-reading after a lost race, and the promotion gate.
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/engine/engine.h"

namespace sessiontoken::engine {
namespace {

constexpr absl::string_view kMarkPrefix = "_mark.";  // as in engine.cc
constexpr absl::string_view kWaitingPayload = "sessiontoken/promotion-waits";

absl::Status PromotionWaits(std::string message) {
  absl::Status s = absl::FailedPreconditionError(std::move(message));
  s.SetPayload(kWaitingPayload, absl::Cord("1"));
  return s;
}

}  // namespace

bool IsPromotionWaiting(const absl::Status& status) {
  return absl::IsFailedPrecondition(status) && status.GetPayload(kWaitingPayload).has_value();
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::NewReplica(
    std::unique_ptr<store::ReplicatedStore> store, std::unique_ptr<store::Sealer> sealer,
    const keyring::Clock* clock, EngineOptions options) {
  if (store == nullptr || sealer == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("engine needs a store, a sealer and a clock");
  }
  if (options.replica_id.empty()) return absl::InvalidArgumentError("replica_id: required");
  if (absl::Status s = ValidateLimits(options.limits); !s.ok()) return s;
  store::ReplicatedStore* replicated = store.get();
  std::unique_ptr<Engine> e(
      new Engine(std::move(store), std::move(sealer), clock, std::move(options)));
  e->replicated_ = replicated;
  e->ready_.store(false);
  e->registry_.store(std::make_shared<Registry>());
  return e;
}

std::optional<std::string> Engine::InstallRecord(const std::string& name,
                                                 const store::VersionedBlob& blob,
                                                 uint64_t mark_revision) {
  std::shared_ptr<const Registry> reg = registry_.load();
  auto it = reg->find(name);
  const Entry* held = it == reg->end() ? nullptr : &it->second;
  if (held != nullptr && blob.version <= held->store_version) return std::nullopt;
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> opened = sealer_->Open(name, blob.data);
  absl::StatusOr<std::shared_ptr<const format::KeyringSigner>> signer =
      opened.ok() ? format::KeyringSigner::New(*opened)
                  : absl::StatusOr<std::shared_ptr<const format::KeyringSigner>>(opened.status());
  if (!signer.ok()) {
    return absl::StrCat("keyring ", name, " (store version ", blob.version,
                        ") does not open: ", signer.status().message(),
                        "; keeping the last good copy");
  }
  const uint64_t revision = (*signer)->keyring().revision();
  const uint64_t floor = std::max(mark_revision, held ? held->keyring().revision() : 0);
  if (revision < floor && !options_.accept_rollback.contains(name)) {
    return absl::StrCat("keyring ", name, ": the store holds revision ", revision,
                        ", older than revision ", floor,
                        " already seen (rolled back?); keeping the last good copy. To accept "
                        "it on purpose, restart with --accept_rollback=",
                        name);
  }
  auto next = std::make_shared<Registry>(*reg);
  Entry& entry = (*next)[name];  // keeps its revocation list
  entry.signer = *std::move(signer);
  entry.store_version = blob.version;
  registry_.store(std::move(next), std::memory_order_release);
  return std::nullopt;
}

std::vector<std::string> Engine::InstallSnapshot(const store::StoreSnapshot& snapshot) {
  std::vector<std::string> problems;
  absl::MutexLock lock(&write_mu_);
  // A first load that finds records of a KEK this replica lacks: it must not serve (it would
  // serve without those keyrings); main refuses the start with startup_failure().
  if (!ready() && RefuseForeignKek(snapshot)) return {startup_failure_.ToString()};
  absl::flat_hash_map<std::string, uint64_t> marks;
  for (const store::KeyringRecord& r : snapshot.keyrings) {
    if (!absl::StartsWith(r.name, kMarkPrefix) || !r.status.ok()) continue;
    const std::string keyring = r.name.substr(kMarkPrefix.size());
    absl::StatusOr<uint64_t> revision = sealer_->OpenMark(keyring, r.blob.data);
    if (revision.ok()) marks[keyring] = *revision;
  }
  for (const store::KeyringRecord& r : snapshot.keyrings) {
    if (absl::StartsWith(r.name, kMarkPrefix) || absl::StartsWith(r.name, kRevocationPrefix)) {
      continue;
    }
    if (!r.status.ok()) {
      problems.push_back(absl::StrCat("keyring ", r.name, ": ", r.status.message(),
                                      "; keeping the last good copy"));
      continue;
    }
    auto mark = marks.find(r.name);
    if (std::optional<std::string> p =
            InstallRecord(r.name, r.blob, mark == marks.end() ? 0 : mark->second)) {
      problems.push_back(*std::move(p));
    }
  }
  // Revocations once their keyrings are in place.
  for (const store::KeyringRecord& r : snapshot.keyrings) {
    if (!absl::StartsWith(r.name, kRevocationPrefix)) continue;
    std::optional<std::string> p = r.status.ok() ? InstallShard(r.name, r.blob)
                                                 : absl::StrCat(r.name, ": ", r.status.message(),
                                                                "; keeping the last good copy");
    if (p.has_value()) problems.push_back(*std::move(p));
  }
  for (const std::string& key : snapshot.foreign_keys) {
    problems.push_back(absl::StrCat("ignoring ", key, ": names no keyring"));
  }
  ready_.store(true, std::memory_order_release);
  return problems;
}

std::vector<std::string> Engine::ApplyEvents(const std::vector<store::KeyringEvent>& events) {
  std::vector<std::string> problems;
  absl::MutexLock lock(&write_mu_);
  for (const store::KeyringEvent& e : events) {
    if (absl::StartsWith(e.name, kMarkPrefix)) continue;
    if (absl::StartsWith(e.name, kRevocationPrefix) && !e.deleted) {
      std::optional<std::string> p = e.status.ok() ? InstallShard(e.name, e.blob)
                                                   : absl::StrCat(e.name, ": ", e.status.message(),
                                                                  "; keeping the last good copy");
      if (p.has_value()) problems.push_back(*std::move(p));
      continue;
    }
    if (e.deleted) {
      // No API deletes a keyring; someone removed it in etcd. Forgetting it would reject
      // every session it signed: keep serving it, and say so.
      if (registry_.load()->contains(e.name)) {
        problems.push_back(absl::StrCat("keyring ", e.name,
                                        " was deleted from the store by hand; this replica "
                                        "keeps serving its last good copy until restarted"));
      }
      continue;
    }
    if (!e.status.ok()) {
      problems.push_back(absl::StrCat("keyring ", e.name, ": ", e.status.message(),
                                      "; keeping the last good copy"));
      continue;
    }
    if (std::optional<std::string> p = InstallRecord(e.name, e.blob, 0)) {
      problems.push_back(*std::move(p));
    }
  }
  return problems;
}

absl::Status Engine::Reread(absl::string_view name) {
  absl::StatusOr<store::VersionedBlob> blob = store_->Get(name);
  if (absl::IsNotFound(blob.status())) return absl::OkStatus();
  if (!blob.ok()) return blob.status();
  if (std::optional<std::string> p = InstallRecord(std::string(name), *blob, 0)) {
    return absl::DataLossError(*p);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Engine::PutGated(absl::string_view name, absl::string_view sealed,
                                          uint64_t current_version) {
  absl::StatusOr<store::PresenceSet> presence = replicated_->ListPresence();
  if (!presence.ok()) return presence.status();
  for (const store::PresenceEntry& r : presence->replicas) {
    if (r.replica_id == options_.replica_id) continue;  // holds what this engine holds
    if (r.loaded_revision < static_cast<int64_t>(current_version)) {
      return PromotionWaits(absl::StrCat(
          "keyring ", name, ": the new primary waits until every replica has loaded it; replica ",
          r.replica_id, " has loaded store revision ", r.loaded_revision, ", the key is at ",
          current_version, " (nothing changed; the scheduler retries)"));
    }
  }
  return replicated_->PutIfPresenceUnchanged(name, sealed, current_version, *presence);
}

absl::Status Engine::BehindError(const format::VerifyResult& result) const {
  return absl::UnavailableError(absl::StrCat(
      "this replica is catching up with the store (its presence lease is not confirmed) and "
      "does not know ",
      result.status == format::VerifyStatus::kUnknownKey && result.key_id != 0
          ? absl::StrCat("key ", result.key_id)
          : std::string("the key of this token"),
      " yet; retry on another replica"));
}

absl::Status Engine::EnsureDefaultKeyring() {
  const std::string& def = options_.default_keyring;
  if (def.empty()) return absl::OkStatus();
  absl::StatusOr<AdminOutcome> r =
      Transact(absl::Now() + options_.admin_wait, def,
               [&](const Entry* current,
                   AdminOutcome*) -> absl::StatusOr<std::shared_ptr<const keyring::Keyring>> {
                 if (current != nullptr) return std::shared_ptr<const keyring::Keyring>();
                 return keyring::Keyring::Create(def, clock_->Now());
               });
  return r.status();
}

}  // namespace sessiontoken::engine
