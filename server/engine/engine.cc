#include "server/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/engine/writer_guard.h"
#include "server/keyring/lifecycle.h"
#include "server/token/native.h"

namespace sessiontoken::engine {
namespace {

using KeyringPtr = std::shared_ptr<const keyring::Keyring>;

absl::StatusOr<std::shared_ptr<const format::KeyringSigner>> SignerFor(
    absl::StatusOr<KeyringPtr> keyring) {
  if (!keyring.ok()) return keyring.status();
  return format::KeyringSigner::New(*std::move(keyring));
}

// The error for a keyring name that is not in the registry.
absl::Status Missing(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("keyring: required");
  if (absl::Status s = keyring::ValidateKeyringName(name); !s.ok()) return s;
  return absl::NotFoundError(absl::StrCat("keyring \"", name, "\" not found"));
}

// Store records that are not keyrings: high-water marks ("_mark.<keyring>"; keyring names
// cannot start with '_').
constexpr absl::string_view kMarkPrefix = "_mark.";
std::string MarkName(absl::string_view keyring) { return absl::StrCat(kMarkPrefix, keyring); }

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::New(std::unique_ptr<store::Store> store,
                                                    std::unique_ptr<store::Sealer> sealer,
                                                    const keyring::Clock* clock,
                                                    EngineOptions options) {
  if (store == nullptr || sealer == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("engine needs a store, a sealer and a clock");
  }
  if (absl::Status s = ValidateLimits(options.limits); !s.ok()) return s;
  std::unique_ptr<Engine> e(
      new Engine(std::move(store), std::move(sealer), clock, std::move(options)));
  if (absl::Status s = e->Load(); !s.ok()) return s;
  return e;
}

absl::StatusOr<std::optional<Engine::Mark>> Engine::ReadMark(absl::string_view name) {
  absl::StatusOr<store::VersionedBlob> blob = store_->Get(MarkName(name));
  if (absl::IsNotFound(blob.status())) return std::nullopt;
  if (!blob.ok()) return blob.status();
  absl::StatusOr<uint64_t> revision = sealer_->OpenMark(name, blob->data);
  if (!revision.ok()) return Mark{0, blob->version, revision.status()};
  return Mark{*revision, blob->version, absl::OkStatus(), sealer_->SealedWithCurrent(blob->data)};
}

absl::StatusOr<Engine::Entry> Engine::LoadOne(const std::string& name,
                                              const std::optional<Mark>& mark) {
  absl::StatusOr<store::VersionedBlob> blob = store_->Get(name);
  if (!blob.ok()) return blob.status();
  absl::StatusOr<std::shared_ptr<const format::KeyringSigner>> signer =
      SignerFor(sealer_->Open(name, blob->data));
  if (!signer.ok()) return signer.status();
  const uint64_t revision = (*signer)->keyring().revision();
  if (mark.has_value() && revision < mark->revision) {
    if (!options_.accept_rollback.contains(name)) {
      return absl::FailedPreconditionError(
          absl::StrCat("keyring ", name, ": the stored revision ", revision,
                       " is older than the highest this store has held (", mark->revision,
                       "): it was rolled back (an old file restored?), which could bring back keys "
                       "destroyed since. If you are restoring a backup on purpose, start once with "
                       "--accept_rollback=",
                       name));
    }
    if (options_.audit_log != nullptr) {
      AuditEvent e;
      e.time = clock_->Now();
      e.caller = "start-up";
      e.operation = "accept_rollback";
      e.keyring = name;
      e.revision = revision;
      e.outcome = absl::StrCat("ok: revision ", revision, " loaded below the high-water mark ",
                               mark->revision, " (--accept_rollback)");
      options_.audit_log->Record(e);
    }
  }
  return Entry{*std::move(signer), blob->version};
}

absl::Status Engine::WriteMark(absl::string_view name, uint64_t revision,
                               const std::optional<Mark>& current) {
  if (current.has_value() && current->revision == revision && current->current_kek) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> sealed = sealer_->SealMark(name, revision);
  if (!sealed.ok()) return sealed.status();
  return store_->Put(MarkName(name), *sealed, current.has_value() ? current->version : 0).status();
}

absl::Status Engine::Load() {
  absl::MutexLock lock(&write_mu_);
  auto reg = std::make_shared<Registry>();
  absl::StatusOr<std::vector<std::string>> names = store_->List();
  if (!names.ok()) return names.status();
  absl::flat_hash_map<std::string, std::optional<Mark>> marks;
  for (const std::string& name : *names) {
    if (absl::StartsWith(name, kMarkPrefix) || absl::StartsWith(name, kRevocationPrefix)) continue;
    absl::StatusOr<std::optional<Mark>> mark = ReadMark(name);
    if (!mark.ok()) return mark.status();
    if (mark->has_value() && !(*mark)->damage.ok()) return (*mark)->damage;
    absl::StatusOr<Entry> entry = LoadOne(name, *mark);
    if (!entry.ok()) return entry.status();
    (*reg)[name] = *std::move(entry);
    marks[name] = *mark;
  }
  if (absl::Status s = LoadRevocations(*names, reg.get()); !s.ok()) return s;
  // Every keyring loaded: only now write (so that a refused start changes nothing). The
  // marks follow the loaded revisions: raised after a crash between a keyring write and its
  // mark, lowered only for a rollback the operator accepted.
  for (const auto& [name, entry] : *reg) {
    if (absl::Status s = WriteMark(name, entry.keyring().revision(), marks[name]); !s.ok()) {
      return s;
    }
  }
  registry_.store(std::move(reg));
  const std::string& def = options_.default_keyring;
  if (def.empty() || registry_.load()->contains(def)) return absl::OkStatus();
  absl::StatusOr<KeyringPtr> kr = keyring::Keyring::Create(def, clock_->Now());
  if (!kr.ok()) return kr.status();
  return Commit(def, 0, *std::move(kr));
}

absl::StatusOr<Engine::Entry> Engine::Lookup(absl::string_view name) const {
  std::shared_ptr<const Registry> reg = registry_.load(std::memory_order_acquire);
  absl::StatusOr<const Entry*> e = Find(*reg, name);
  if (!e.ok()) return e.status();
  return **e;
}

absl::StatusOr<const Engine::Entry*> Engine::Find(const Registry& reg,
                                                  absl::string_view name) const {
  auto it = reg.find(name);
  if (it == reg.end()) {
    if (!ready()) {
      return absl::UnavailableError(
          "this replica has not loaded its keyrings from the store yet; retry (another replica)");
    }
    return Missing(name);
  }
  return &it->second;
}

Engine::View Engine::CurrentView() const {
  View v;
  v.registry_ = registry_.load(std::memory_order_acquire);
  return v;
}

absl::StatusOr<std::shared_ptr<const keyring::Keyring>> Engine::Get(absl::string_view name) const {
  absl::StatusOr<Entry> e = Lookup(name);
  if (!e.ok()) return e.status();
  return e->signer->shared_keyring();
}

absl::StatusOr<format::SignResult> Engine::Sign(absl::string_view name, absl::string_view payload,
                                                absl::string_view audience, absl::Duration ttl,
                                                const View* view, absl::string_view subject) const {
  const View pinned = view != nullptr ? View() : CurrentView();
  const Registry& reg = view != nullptr ? *view->registry_ : *pinned.registry_;
  absl::StatusOr<const Entry*> found = Find(reg, name);
  if (!found.ok()) return found.status();
  const keyring::Keyring& kr = (*found)->keyring();
  const bool flask = kr.primary().algorithm() == v1::HMAC_SHA1_FLASK;
  if (absl::Status s =
          CheckSize("payload", payload.size(),
                    flask ? kFlaskMaxRawPayloadBytes : options_.limits.max_payload_bytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSize("audience", audience.size(), kMaxAudienceBytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSize("subject", subject.size(), kMaxSubjectBytes); !s.ok()) return s;
  if (absl::Status s = CheckLifetime("ttl", ttl, options_.limits.max_ttl); !s.ok()) return s;
  const absl::Duration keyring_max = keyring::MaxTtl(kr.policy(), options_.limits.max_ttl);
  if (ttl > keyring_max) {
    return absl::InvalidArgumentError(absl::StrCat("ttl: ", absl::FormatDuration(ttl),
                                                   " exceeds keyring ", name, "'s max_token_ttl ",
                                                   absl::FormatDuration(keyring_max)));
  }
  const absl::Time now = clock_->Now();
  absl::StatusOr<format::SignResult> r =
      (*found)->signer->Sign(payload, audience, now, ttl, subject);
  if (options_.observer != nullptr && r.ok()) options_.observer->OnSign(name, kr, r->key_id, now);
  return r;
}

absl::StatusOr<format::VerifyResult> Engine::Verify(absl::string_view name, absl::string_view token,
                                                    absl::string_view audience,
                                                    std::optional<absl::Duration> max_age,
                                                    const View* view) const {
  const View pinned = view != nullptr ? View() : CurrentView();
  const Registry& reg = view != nullptr ? *view->registry_ : *pinned.registry_;
  absl::StatusOr<const Entry*> found = Find(reg, name);
  if (!found.ok()) return found.status();
  if (absl::Status s = CheckSize("audience", audience.size(), kMaxAudienceBytes); !s.ok()) {
    return s;
  }
  if (max_age.has_value()) {
    if (absl::Status s = CheckLifetime("max_age", *max_age, kTtlCeiling); !s.ok()) return s;
  }
  if (token.size() > kMaxTokenBytes) {
    // No token of any supported format is this long: a result, not a request error, so
    // that junk cookies are just invalid sessions for the frontend.
    format::VerifyResult malformed;
    malformed.status = format::VerifyStatus::kMalformed;
    if (options_.observer != nullptr) {
      options_.observer->OnVerify(name, (*found)->keyring(), malformed, clock_->Now());
    }
    return malformed;
  }
  format::VerifyOptions vopts;
  vopts.max_clock_skew = options_.limits.max_clock_skew;
  vopts.max_age =
      max_age.value_or(keyring::MaxTtl((*found)->keyring().policy(), options_.limits.max_ttl));
  const absl::Time now = clock_->Now();
  format::VerifyResult result = (*found)->signer->Verify(token, audience, now, vopts);
  if (result.status == format::VerifyStatus::kValid &&
      (*found)->revocations->IsRevoked(result.token_id, result.subject, result.issued_at)) {
    result.status = format::VerifyStatus::kRevoked;
    result.payload.clear();
    result.refresh_recommended = false;
  }
  // A replica that may be behind does not know every key the others sign with: "unknown"
  // is then a question for another replica, not a rejection (which would log a user out).
  // Flask-format tokens name no key, so a bad signature is the same question there.
  const bool unknown =
      result.status == format::VerifyStatus::kUnknownKey ||
      (result.status == format::VerifyStatus::kBadSignature && !token::HasNativePrefix(token));
  if (unknown) {
    const ReplicaState* replica = replica_state_.load(std::memory_order_acquire);
    if (replica != nullptr && replica->MayBeBehind()) return BehindError(result);
  }
  if (options_.observer != nullptr) {
    options_.observer->OnVerify(name, (*found)->keyring(), result, now);
  }
  return result;
}

absl::Status Engine::Commit(absl::string_view name, uint64_t current_version,
                            std::shared_ptr<const keyring::Keyring> next, bool gated) {
  absl::StatusOr<std::shared_ptr<const format::KeyringSigner>> signer =
      format::KeyringSigner::New(next);
  if (!signer.ok()) return signer.status();
  absl::StatusOr<std::string> sealed = sealer_->Seal(*next);
  if (!sealed.ok()) return sealed.status();
  absl::StatusOr<uint64_t> v = gated ? PutGated(name, *sealed, current_version)
                                     : store_->Put(name, *sealed, current_version);
  if (!v.ok()) return v.status();
  auto reg = std::make_shared<Registry>(*registry_.load());
  Entry& entry = (*reg)[name];  // keeps its revocation list
  entry.signer = *std::move(signer);
  entry.store_version = *v;
  registry_.store(std::move(reg), std::memory_order_release);
  // The change is durable and published. A mark that could not be raised only lags (the
  // next start raises it to what it loads); the change itself stands.
  absl::StatusOr<std::optional<Mark>> mark = ReadMark(name);
  if (mark.ok()) (void)WriteMark(name, next->revision(), *mark);
  return absl::OkStatus();
}

void Engine::Audit(const Actor& caller, absl::string_view operation, absl::string_view keyring,
                   uint32_t key_id, const absl::StatusOr<AdminOutcome>& result) const {
  if (options_.audit_log == nullptr) return;
  AuditEvent e = NewAuditEvent(caller, operation, keyring);
  e.key_id = key_id;
  if (result.ok()) {
    if (result->key_id != 0) e.key_id = result->key_id;
    e.revision = result->keyring->revision();
  }
  e.outcome = AuditOutcome(result.status());
  options_.audit_log->Record(e);
}

AuditEvent Engine::NewAuditEvent(const Actor& caller, absl::string_view operation,
                                 absl::string_view keyring) const {
  AuditEvent e;
  e.time = clock_->Now();
  e.caller = caller.name;
  e.operation = std::string(operation);
  e.keyring = std::string(keyring);
  return e;
}

absl::Status Engine::WriteWithRetries(absl::Time deadline,
                                      const std::function<absl::Status(int attempt)>& attempt) {
  WriterGuard writer(this, deadline);
  if (!writer.status().ok()) return writer.status();
  absl::MutexLock lock(&write_mu_);
  if (!ready()) {
    return absl::UnavailableError(
        "this replica has not loaded its keyrings from the store yet: nothing changed");
  }
  // A replica that lost a race with another one retries on the fresh value (the change is
  // checked again against it); a few lost races in a row end as ABORTED.
  const int attempts = replicated_ != nullptr ? 4 : 1;
  absl::Status lost;
  for (int i = 0; i < attempts; ++i) {
    lost = attempt(i);
    if (lost.ok() || !absl::IsAborted(lost)) return lost;
  }
  return lost;
}

absl::StatusOr<AdminOutcome> Engine::Transact(absl::Time deadline, absl::string_view name,
                                              const Change& change) {
  AdminOutcome result;
  absl::Status s = WriteWithRetries(deadline, [&](int attempt) -> absl::Status {
    write_mu_.AssertHeld();  // WriteWithRetries holds it
    if (attempt > 0) {
      if (absl::Status s = Reread(name); !s.ok()) return s;
    }
    std::shared_ptr<const Registry> reg = registry_.load();
    auto it = reg->find(name);
    const Entry* current = it == reg->end() ? nullptr : &it->second;
    AdminOutcome out;
    if (current != nullptr) {
      out.keyring = current->signer->shared_keyring();
      out.previous_primary_key_id = current->keyring().primary().id();
    }
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> next = change(current, &out);
    if (!next.ok()) return next.status();
    if (*next != nullptr) {
      out.keyring = *next;
      // Making an existing key primary on a replica waits for every replica to hold it.
      const uint32_t primary = (*next)->primary().id();
      const bool gated = replicated_ != nullptr && current != nullptr &&
                         primary != out.previous_primary_key_id &&
                         current->keyring().Find(primary) != nullptr;
      absl::Status c = Commit(name, current ? current->store_version : 0, *std::move(next), gated);
      if (!c.ok()) return c;
    }  // else nothing to commit
    result = std::move(out);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return result;
}

// Revocation shards (engine_revoke.cc) change under the same writer rules as keyrings.
absl::Status Engine::ChangeShard(absl::Time deadline, absl::string_view name, int shard,
                                 const ShardChange& change) {
  return WriteWithRetries(deadline, [&](int attempt) -> absl::Status {
    write_mu_.AssertHeld();  // WriteWithRetries holds it
    const std::string record = RevocationRecordName(name, shard);
    if (attempt > 0) {  // lost a race with another replica: take its value, then retry
      absl::StatusOr<store::VersionedBlob> blob = store_->Get(record);
      if (!blob.ok()) return blob.status();
      if (std::optional<std::string> p = InstallShard(record, *blob)) {
        return absl::DataLossError(*p);
      }
    }
    std::shared_ptr<const Registry> reg = registry_.load();
    auto it = reg->find(name);
    if (it == reg->end()) return Missing(name);
    const RevocationList& list = *it->second.revocations;
    absl::StatusOr<std::shared_ptr<RevocationShard>> next = change(list, list.shard(shard));
    if (!next.ok()) return next.status();
    if (*next == nullptr) return absl::OkStatus();
    return CommitShard(name, shard, list.shard(shard).version(), *std::move(next));
  });
}

absl::StatusOr<AdminOutcome> Engine::Mutate(const Actor& caller, absl::string_view operation,
                                            absl::string_view name, uint32_t key_id,
                                            const Change& change) {
  // Real time: how long this change may wait for others, not token or policy time. It gives
  // up a little before the caller's own deadline, so that the caller reads why (a change
  // stuck behind a store that does not answer) instead of its own DEADLINE_EXCEEDED.
  const absl::Time now = absl::Now();
  absl::Time deadline = now + options_.admin_wait;
  if (caller.deadline < deadline) {
    deadline = caller.deadline - std::min(absl::Seconds(1), (caller.deadline - now) / 5);
  }
  absl::StatusOr<AdminOutcome> result = Transact(deadline, name, change);
  Audit(caller, operation, name, key_id, result);
  return result;
}

absl::StatusOr<AdminOutcome> Engine::MutateExisting(
    const Actor& caller, absl::string_view operation, absl::string_view name, uint32_t key_id,
    const std::function<absl::StatusOr<KeyringPtr>(const keyring::Keyring&, AdminOutcome*)>&
        change) {
  return Mutate(caller, operation, name, key_id,
                [&](const Entry* current, AdminOutcome* out) -> absl::StatusOr<KeyringPtr> {
                  if (current == nullptr) return Missing(name);
                  out->key_id = key_id;
                  return change(current->keyring(), out);
                });
}

absl::StatusOr<AdminOutcome> Engine::Rotate(const Actor& caller, absl::string_view name,
                                            bool promote_now, keyring::Algorithm algorithm) {
  return MutateExisting(
      caller, "rotate", name, 0, [&](const keyring::Keyring& k, AdminOutcome* out) {
        // Replicas stage: the scheduler promotes once every replica has the key.
        const bool promote =
            promote_now || (replicated_ == nullptr && k.policy().stage_lead_time().seconds() == 0);
        return keyring::Rotate(k, clock_->Now(), promote, &out->key_id, algorithm);
      });
}

absl::StatusOr<AdminOutcome> Engine::Promote(const Actor& caller, absl::string_view name,
                                             uint32_t key_id) {
  return MutateExisting(caller, "promote", name, key_id,
                        [&](const keyring::Keyring& k, AdminOutcome*) {
                          return keyring::Promote(k, key_id, clock_->Now());
                        });
}

absl::StatusOr<AdminOutcome> Engine::Disable(const Actor& caller, absl::string_view name,
                                             uint32_t key_id) {
  return MutateExisting(caller, "disable", name, key_id,
                        [&](const keyring::Keyring& k, AdminOutcome*) {
                          return keyring::Disable(k, key_id, clock_->Now());
                        });
}

absl::StatusOr<AdminOutcome> Engine::Enable(const Actor& caller, absl::string_view name,
                                            uint32_t key_id) {
  return MutateExisting(caller, "enable", name, key_id,
                        [&](const keyring::Keyring& k, AdminOutcome*) {
                          return keyring::Enable(k, key_id, clock_->Now());
                        });
}

absl::StatusOr<AdminOutcome> Engine::Destroy(const Actor& caller, absl::string_view name,
                                             uint32_t key_id) {
  return MutateExisting(caller, "destroy", name, key_id,
                        [&](const keyring::Keyring& k, AdminOutcome*) {
                          return keyring::Destroy(k, key_id, clock_->Now());
                        });
}

absl::StatusOr<AdminOutcome> Engine::Import(const Actor& caller, absl::string_view name,
                                            keyring::Algorithm algorithm, absl::string_view secret,
                                            keyring::KeyState state) {
  return MutateExisting(
      caller, "import", name, 0, [&](const keyring::Keyring& k, AdminOutcome* out) {
        return keyring::Import(k, algorithm, secret, state, clock_->Now(), &out->key_id);
      });
}

absl::StatusOr<AdminOutcome> Engine::SetPolicy(const Actor& caller, absl::string_view name,
                                               const v1::KeyringPolicy& policy) {
  return MutateExisting(caller, "set_policy", name, 0,
                        [&](const keyring::Keyring& k, AdminOutcome*) {
                          return keyring::WithPolicy(k, policy, options_.limits.max_ttl);
                        });
}

absl::StatusOr<AdminOutcome> Engine::CreateKeyring(const Actor& caller, absl::string_view name,
                                                   const v1::KeyringPolicy& policy,
                                                   keyring::Algorithm algorithm) {
  auto create = [&](const Entry* current, AdminOutcome* out) -> absl::StatusOr<KeyringPtr> {
    if (name.empty()) return absl::InvalidArgumentError("name: required");
    if (absl::Status s = keyring::ValidateKeyringName(name); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("name: ", s.message()));
    }
    if (absl::Status s = keyring::ValidatePolicy(policy, options_.limits.max_ttl); !s.ok()) {
      return s;
    }
    const keyring::Algorithm primary =
        algorithm == v1::ALGORITHM_UNSPECIFIED ? v1::HMAC_SHA256 : algorithm;
    if (absl::Status s = keyring::CheckSealable(policy, primary, name); !s.ok()) return s;
    if (current != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat("name: keyring \"", name, "\" already exists"));
    }
    absl::StatusOr<KeyringPtr> kr =
        keyring::Keyring::Create(std::string(name), clock_->Now(), policy, primary);
    if (kr.ok()) out->key_id = (*kr)->primary().id();
    return kr;
  };
  return Mutate(caller, "create_keyring", name, 0, create);
}

std::vector<std::shared_ptr<const keyring::Keyring>> Engine::ListKeyrings() const {
  std::shared_ptr<const Registry> reg = registry_.load(std::memory_order_acquire);
  std::vector<std::shared_ptr<const keyring::Keyring>> out;
  out.reserve(reg->size());
  for (const auto& [name, entry] : *reg) out.push_back(entry.signer->shared_keyring());
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  return out;
}

absl::StatusOr<std::vector<keyring::Transition>> Engine::ApplyDue(absl::string_view name) {
  std::vector<keyring::Transition> applied;
  // Real time: how long the scheduler may wait for an admin change in progress.
  absl::StatusOr<AdminOutcome> r =
      Transact(absl::Now() + options_.admin_wait, name,
               [&](const Entry* current, AdminOutcome*) -> absl::StatusOr<KeyringPtr> {
                 applied.clear();  // a retry on a fresh value starts over
                 if (current == nullptr) return KeyringPtr();  // removed meanwhile: nothing due
                 return keyring::ApplyDue(current->keyring(), clock_->Now(), &applied,
                                          /*stage_only=*/replicated_ != nullptr);
               });
  if (!r.ok() && IsPromotionWaiting(r.status())) return r.status();  // next tick: no audit
  if (!r.ok()) {
    Audit("scheduler", "tick", name, 0, r);
    return r.status();
  }
  for (const keyring::Transition& t : applied) {
    AdminOutcome one = *r;
    one.key_id = t.key_id;
    Audit("scheduler", t.operation, name, t.key_id, one);
  }
  return applied;
}

}  // namespace sessiontoken::engine
