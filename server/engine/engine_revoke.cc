// The revocation side of Engine (engine.h: RevokeToken, RevokeSubject, PruneRevocations):
// one shard record changed per call, compare-and-swap on its store version, published into
// the keyring's entry for Verify's lock-free lookup, and installed from the store at start
// and from a replica's watch.
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/engine/engine.h"
#include "server/keyring/policy.h"

namespace sessiontoken::engine {
namespace {

// Sealed shards larger than this are refused (etcd's request limit is 1.5 MiB; the cap keeps
// shards far below it: this is a backstop against skew, with its own clear error).
constexpr size_t kMaxShardBytes = 512 * 1024;

absl::Status Full(absl::string_view keyring, size_t cap) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "keyring ", keyring, ": the revocation list is full (max_revocations = ", cap,
      " entries); nothing was revoked. Entries drop as the tokens they match expire; raise "
      "--max_revocations or rotate keys to end every session at once"));
}

}  // namespace

absl::StatusOr<RevokeOutcome> Engine::RevokeToken(const Actor& caller, absl::string_view name,
                                                  absl::string_view token,
                                                  absl::string_view audience) {
  absl::StatusOr<RevokeOutcome> out = [&]() -> absl::StatusOr<RevokeOutcome> {
    if (token.empty()) return absl::InvalidArgumentError("token: required");
    absl::StatusOr<format::VerifyResult> v = Verify(name, token, audience);
    if (!v.ok()) return v.status();
    if (v->status == format::VerifyStatus::kRevoked) {  // done before (a retried call): same answer
      return RevokeOutcome{absl::ToUnixSeconds(clock_->Now()), v->expires_at};
    }
    if (v->status != format::VerifyStatus::kValid) {
      return absl::InvalidArgumentError(absl::StrCat("token: does not verify (",
                                                     format::VerifyStatusName(v->status),
                                                     "); nothing was revoked"));
    }
    if (v->token_id.empty()) {
      return absl::InvalidArgumentError(
          "token: carries no token id (a v1 or Flask-format token); revoke its subject, or "
          "rotate the key; nothing was revoked");
    }
    RevokeOutcome r{absl::ToUnixSeconds(clock_->Now()), v->expires_at};
    const std::string id = v->token_id;
    absl::Status s = ChangeShard(
        std::min(caller.deadline, absl::Now() + options_.admin_wait), name, TokenShard(id),
        [&](const RevocationList& list,
            const RevocationShard& shard) -> absl::StatusOr<std::shared_ptr<RevocationShard>> {
          std::shared_ptr<RevocationShard> next = shard.Pruned(r.revoked_at);
          next->AddToken(id, r.drop_after);
          if (list.size() - shard.size() + next->size() > options_.limits.max_revocations) {
            return Full(name, options_.limits.max_revocations);
          }
          return next;
        });
    if (!s.ok()) return s;
    return r;
  }();
  AuditRevoke(caller, "revoke_token", name, "", out);
  return out;
}

absl::StatusOr<RevokeOutcome> Engine::RevokeSubject(const Actor& caller, absl::string_view name,
                                                    absl::string_view subject) {
  absl::StatusOr<RevokeOutcome> out = [&]() -> absl::StatusOr<RevokeOutcome> {
    if (subject.empty()) return absl::InvalidArgumentError("subject: required");
    if (absl::Status s = CheckSize("subject", subject.size(), kMaxSubjectBytes); !s.ok()) return s;
    absl::StatusOr<Entry> entry = Lookup(name);
    if (!entry.ok()) return entry.status();
    const absl::Duration max_ttl =
        keyring::MaxTtl(entry->keyring().policy(), options_.limits.max_ttl);
    const int64_t now = absl::ToUnixSeconds(clock_->Now());
    RevokeOutcome r{now, now + absl::ToInt64Seconds(max_ttl + options_.limits.max_clock_skew)};
    absl::Status s = ChangeShard(
        std::min(caller.deadline, absl::Now() + options_.admin_wait), name, SubjectShard(subject),
        [&](const RevocationList& list,
            const RevocationShard& shard) -> absl::StatusOr<std::shared_ptr<RevocationShard>> {
          std::shared_ptr<RevocationShard> next = shard.Pruned(now);
          next->AddSubject(subject, r.revoked_at, r.drop_after);
          if (list.size() - shard.size() + next->size() > options_.limits.max_revocations) {
            return Full(name, options_.limits.max_revocations);
          }
          return next;
        });
    if (!s.ok()) return s;
    return r;
  }();
  AuditRevoke(caller, "revoke_subject", name, subject, out);
  return out;
}

absl::StatusOr<size_t> Engine::PruneRevocations(absl::string_view name) {
  absl::StatusOr<Entry> entry = Lookup(name);
  if (!entry.ok()) return entry.status();
  const int64_t now = absl::ToUnixSeconds(clock_->Now());
  size_t dropped = 0;
  for (int i = 0; i < kRevocationShards; ++i) {
    if (entry->revocations->shard(i).earliest_drop() > now) continue;
    absl::Status s = ChangeShard(
        absl::Now() + options_.admin_wait, name, i,
        [&](const RevocationList&,
            const RevocationShard& shard) -> absl::StatusOr<std::shared_ptr<RevocationShard>> {
          if (shard.earliest_drop() > now) return nullptr;
          std::shared_ptr<RevocationShard> next = shard.Pruned(now);
          dropped += shard.size() - next->size();
          return next;
        });
    if (!s.ok() && !absl::IsAborted(s)) return s;
  }
  return dropped;
}

size_t Engine::RevocationCount(absl::string_view name) const {
  absl::StatusOr<Entry> entry = Lookup(name);
  return entry.ok() ? entry->revocations->size() : 0;
}

absl::Status Engine::CommitShard(absl::string_view name, int shard, uint64_t current_version,
                                 std::shared_ptr<RevocationShard> next) {
  const std::string record = RevocationRecordName(name, shard);
  v1::StoredRevocations stored;
  next->ToStored(name, shard, &stored);
  absl::StatusOr<std::string> sealed = sealer_->SealRevocations(record, stored.SerializeAsString());
  if (!sealed.ok()) return sealed.status();
  if (sealed->size() > kMaxShardBytes) return Full(name, options_.limits.max_revocations);
  absl::StatusOr<uint64_t> v = store_->Put(record, *sealed, current_version);
  if (!v.ok()) return v.status();
  next->set_version(*v);
  auto reg = std::make_shared<Registry>(*registry_.load());
  Entry& entry = (*reg)[name];
  entry.revocations = entry.revocations->With(shard, std::move(next));
  registry_.store(std::move(reg), std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RevocationShard>> Engine::OpenShard(
    const std::string& record, const store::VersionedBlob& blob) const {
  absl::StatusOr<std::string> plain = sealer_->OpenRevocations(record, blob.data);
  if (!plain.ok()) return plain.status();
  v1::StoredRevocations stored;
  std::optional<RevocationRecord> parsed = ParseRevocationRecordName(record);
  if (!parsed.has_value() || !stored.ParseFromString(*plain) ||
      stored.keyring() != parsed->keyring ||
      stored.shard() != static_cast<uint32_t>(parsed->shard)) {
    return absl::DataLossError(absl::StrCat("revocations ", record, ": not the stored shard"));
  }
  return RevocationShard::FromStored(stored, blob.version);
}

std::optional<std::string> Engine::InstallShard(const std::string& record,
                                                const store::VersionedBlob& blob) {
  std::optional<RevocationRecord> parsed = ParseRevocationRecordName(record);
  std::shared_ptr<const Registry> reg = registry_.load();
  auto it = parsed.has_value() ? reg->find(parsed->keyring) : reg->end();
  if (it == reg->end()) return absl::StrCat("ignoring ", record, ": names no keyring");
  const RevocationShard& held = it->second.revocations->shard(parsed->shard);
  if (blob.version <= held.version()) return std::nullopt;
  absl::StatusOr<std::shared_ptr<RevocationShard>> shard = OpenShard(record, blob);
  if (!shard.ok()) {
    return absl::StrCat(shard.status().message(), "; keeping the last good copy");
  }
  auto next = std::make_shared<Registry>(*reg);
  Entry& entry = (*next)[parsed->keyring];
  entry.revocations = entry.revocations->With(parsed->shard, *std::move(shard));
  registry_.store(std::move(next), std::memory_order_release);
  return std::nullopt;
}

absl::Status Engine::LoadRevocations(const std::vector<std::string>& names, Registry* reg) {
  for (const std::string& name : names) {
    std::optional<RevocationRecord> parsed = ParseRevocationRecordName(name);
    if (!parsed.has_value()) continue;
    auto it = reg->find(parsed->keyring);
    if (it == reg->end()) continue;  // a keyring this store no longer holds
    absl::StatusOr<store::VersionedBlob> blob = store_->Get(name);
    if (!blob.ok()) return blob.status();
    // A damaged list refuses the start: serving without it would accept revoked sessions.
    absl::StatusOr<std::shared_ptr<RevocationShard>> shard = OpenShard(name, *blob);
    if (!shard.ok()) return shard.status();
    it->second.revocations = it->second.revocations->With(parsed->shard, *std::move(shard));
  }
  return absl::OkStatus();
}

void Engine::AuditRevoke(const Actor& caller, absl::string_view operation,
                         absl::string_view keyring, absl::string_view what,
                         const absl::StatusOr<RevokeOutcome>& result) const {
  if (options_.audit_log == nullptr) return;
  AuditEvent e = NewAuditEvent(caller, operation, keyring);
  e.outcome = AuditOutcome(result.status());
  if (result.ok()) {
    const std::string drop = absl::FormatTime(absl::FromUnixSeconds(result->drop_after));
    e.outcome = what.empty() ? absl::StrCat("ok: drop after ", drop)
                             : absl::StrCat("ok: subject ", what, ", drop after ", drop);
  }
  options_.audit_log->Record(e);
}

}  // namespace sessiontoken::engine
