#include "server/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/token/native.h"

namespace sessiontoken::engine {

absl::StatusOr<std::unique_ptr<Engine>> Engine::New(std::unique_ptr<store::Store> store,
                                                    std::unique_ptr<store::Sealer> sealer,
                                                    const keyring::Clock* clock,
                                                    EngineOptions options) {
  if (store == nullptr || sealer == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("engine needs a store, a sealer and a clock");
  }
  if (options.max_payload_bytes > token::kMaxPayloadSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_payload_bytes: at most ", token::kMaxPayloadSize));
  }
  std::unique_ptr<Engine> e(
      new Engine(std::move(store), std::move(sealer), clock, std::move(options)));
  if (absl::Status s = e->Load(); !s.ok()) return s;
  return e;
}

absl::Status Engine::Load() {
  absl::MutexLock lock(&write_mu_);
  auto reg = std::make_shared<Registry>();
  absl::StatusOr<std::vector<std::string>> names = store_->List();
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    absl::StatusOr<store::VersionedBlob> blob = store_->Get(name);
    if (!blob.ok()) return blob.status();
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = sealer_->Open(name, blob->data);
    if (!kr.ok()) return kr.status();
    (*reg)[name] = Entry{*std::move(kr), blob->version};
  }
  const std::string& def = options_.default_keyring;
  if (!def.empty() && !reg->contains(def)) {
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr =
        keyring::Keyring::Create(def, clock_->Now());
    if (!kr.ok()) return kr.status();
    absl::StatusOr<std::string> sealed = sealer_->Seal(**kr);
    if (!sealed.ok()) return sealed.status();
    absl::StatusOr<uint64_t> v = store_->Put(def, *sealed, 0);
    if (!v.ok()) return v.status();
    (*reg)[def] = Entry{*std::move(kr), *v};
  }
  registry_.store(std::move(reg));
  return absl::OkStatus();
}

namespace {
// InvalidArgument naming `field` when `size` exceeds `limit`.
absl::Status CheckSize(absl::string_view field, size_t size, size_t limit) {
  if (size <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", size, " bytes exceeds the limit of ", limit));
}
}  // namespace

absl::StatusOr<Engine::Entry> Engine::Lookup(absl::string_view name) const {
  std::shared_ptr<const Registry> reg = registry_.load(std::memory_order_acquire);
  absl::StatusOr<const Entry*> e = Find(*reg, name);
  if (!e.ok()) return e.status();
  return **e;
}

absl::StatusOr<const Engine::Entry*> Engine::Find(const Registry& reg,
                                                  absl::string_view name) const {
  if (name.empty()) return absl::InvalidArgumentError("keyring: required");
  auto it = reg.find(name);
  if (it == reg.end()) {
    if (absl::Status s = keyring::ValidateKeyringName(name); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("keyring \"", name, "\" not found"));
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
  return e->keyring;
}

absl::StatusOr<keyring::SignResult> Engine::Sign(absl::string_view name, absl::string_view payload,
                                                 absl::string_view audience, absl::Duration ttl,
                                                 const View* view) const {
  if (absl::Status s = CheckSize("payload", payload.size(), options_.max_payload_bytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSize("audience", audience.size(), options_.max_audience_bytes);
      !s.ok()) {
    return s;
  }
  if (ttl < options_.min_ttl || ttl > options_.max_ttl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl: ", absl::FormatDuration(ttl), " is outside the allowed range [",
        absl::FormatDuration(options_.min_ttl), ", ", absl::FormatDuration(options_.max_ttl), "]"));
  }
  const View pinned = view != nullptr ? View() : CurrentView();
  const Registry& reg = view != nullptr ? *view->registry_ : *pinned.registry_;
  absl::StatusOr<const Entry*> found = Find(reg, name);
  if (!found.ok()) return found.status();
  const absl::Duration keyring_max = (*found)->keyring->MaxTtl(options_.max_ttl);
  if (ttl > keyring_max) {
    return absl::InvalidArgumentError(absl::StrCat("ttl: ", absl::FormatDuration(ttl),
                                                   " exceeds keyring ", name, "'s max_token_ttl ",
                                                   absl::FormatDuration(keyring_max)));
  }
  return (*found)->keyring->Sign(payload, audience, clock_->Now(), ttl);
}

absl::StatusOr<keyring::VerifyResult> Engine::Verify(absl::string_view name,
                                                     absl::string_view token,
                                                     absl::string_view audience,
                                                     std::optional<absl::Duration> max_age,
                                                     const View* view) const {
  const View pinned = view != nullptr ? View() : CurrentView();
  const Registry& reg = view != nullptr ? *view->registry_ : *pinned.registry_;
  if (token.size() > options_.max_token_bytes) {
    // No token of any supported format is this long: a result, not a request error, so
    // that junk cookies are just invalid sessions for the frontend.
    absl::StatusOr<const Entry*> found = Find(reg, name);
    if (!found.ok()) return found.status();
    keyring::VerifyResult r;
    r.status = keyring::VerifyStatus::kMalformed;
    return r;
  }
  if (absl::Status s = CheckSize("audience", audience.size(), options_.max_audience_bytes);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<const Entry*> found = Find(reg, name);
  if (!found.ok()) return found.status();
  keyring::VerifyOptions vopts = options_.verify;
  vopts.max_age = max_age.value_or((*found)->keyring->MaxTtl(options_.max_ttl));
  return (*found)->keyring->Verify(token, audience, clock_->Now(), vopts);
}

absl::Status Engine::Commit(absl::string_view name, const Entry& current,
                            std::shared_ptr<const keyring::Keyring> next) {
  absl::StatusOr<std::string> sealed = sealer_->Seal(*next);
  if (!sealed.ok()) return sealed.status();
  absl::StatusOr<uint64_t> v = store_->Put(name, *sealed, current.store_version);
  if (!v.ok()) return v.status();
  auto reg = std::make_shared<Registry>(*registry_.load());
  (*reg)[name] = Entry{std::move(next), *v};
  registry_.store(std::move(reg), std::memory_order_release);
  return absl::OkStatus();
}

absl::Time Engine::Deadline(const Actor& caller) const {
  return std::min(caller.deadline, absl::Now() + options_.admin_wait);
}

void Engine::Audit(const Actor& caller, absl::string_view operation, absl::string_view keyring,
                   uint32_t key_id, const absl::StatusOr<AdminOutcome>& result) const {
  if (options_.audit_log == nullptr) return;
  AuditEvent e;
  e.time = clock_->Now();
  e.caller = caller.name;
  e.operation = std::string(operation);
  e.keyring = std::string(keyring);
  e.key_id = key_id;
  if (result.ok()) {
    if (result->key_id != 0) e.key_id = result->key_id;
    e.revision = result->keyring->revision();
    e.outcome = "ok";
  } else {
    e.outcome = absl::StrCat(absl::StatusCodeToString(result.status().code()), ": ",
                             result.status().message());
  }
  options_.audit_log->Record(e);
}

class Engine::WriterGuard {
 public:
  WriterGuard(Engine* e, absl::Time deadline) : e_(e) {
    absl::MutexLock l(&e->busy_mu_);
    auto free = [](bool* busy) { return !*busy; };
    ok_ = e->busy_mu_.AwaitWithDeadline(absl::Condition(+free, &e->busy_), deadline);
    if (ok_) e->busy_ = true;
  }
  ~WriterGuard() {
    if (!ok_) return;
    absl::MutexLock l(&e_->busy_mu_);
    e_->busy_ = false;
  }
  absl::Status status() const {
    return ok_ ? absl::OkStatus()
               : absl::DeadlineExceededError(
                     "another admin change is still in progress; this one did not start "
                     "before its deadline and changed nothing");
  }

 private:
  Engine* e_;
  bool ok_ = false;
};

absl::StatusOr<AdminOutcome> Engine::Mutate(const Actor& caller, absl::string_view operation,
                                            absl::string_view name, uint32_t key_id,
                                            const Change& change) {
  absl::StatusOr<AdminOutcome> result = [&]() -> absl::StatusOr<AdminOutcome> {
    WriterGuard writer(this, Deadline(caller));
    if (!writer.status().ok()) return writer.status();
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<Entry> e = Lookup(name);
    if (!e.ok()) return e.status();
    AdminOutcome out;
    out.key_id = key_id;
    out.previous_primary_key_id = e->keyring->primary().id();
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> next = change(*e->keyring, &out);
    if (!next.ok()) return next.status();
    out.keyring = *next;
    if (absl::Status s = Commit(name, *e, *std::move(next)); !s.ok()) return s;
    return out;
  }();
  Audit(caller, operation, name, key_id, result);
  return result;
}

absl::StatusOr<AdminOutcome> Engine::Rotate(const Actor& caller, absl::string_view name,
                                            bool promote_now, keyring::Algorithm algorithm) {
  return Mutate(caller, "rotate", name, 0, [&](const keyring::Keyring& k, AdminOutcome* out) {
    const bool promote = promote_now || k.policy().stage_lead_time().seconds() == 0;
    return k.Rotate(clock_->Now(), promote, &out->key_id, algorithm);
  });
}

absl::StatusOr<AdminOutcome> Engine::Promote(const Actor& caller, absl::string_view name,
                                             uint32_t key_id) {
  return Mutate(caller, "promote", name, key_id, [&](const keyring::Keyring& k, AdminOutcome*) {
    return k.Promote(key_id, clock_->Now());
  });
}

absl::StatusOr<AdminOutcome> Engine::Disable(const Actor& caller, absl::string_view name,
                                             uint32_t key_id) {
  return Mutate(caller, "disable", name, key_id, [&](const keyring::Keyring& k, AdminOutcome*) {
    return k.Disable(key_id, clock_->Now());
  });
}

absl::StatusOr<AdminOutcome> Engine::Enable(const Actor& caller, absl::string_view name,
                                            uint32_t key_id) {
  return Mutate(caller, "enable", name, key_id, [&](const keyring::Keyring& k, AdminOutcome*) {
    return k.Enable(key_id, clock_->Now());
  });
}

absl::StatusOr<AdminOutcome> Engine::Destroy(const Actor& caller, absl::string_view name,
                                             uint32_t key_id) {
  return Mutate(caller, "destroy", name, key_id, [&](const keyring::Keyring& k, AdminOutcome*) {
    return k.Destroy(key_id, clock_->Now());
  });
}

absl::StatusOr<AdminOutcome> Engine::Import(const Actor& caller, absl::string_view name,
                                            keyring::Algorithm algorithm, absl::string_view secret,
                                            keyring::KeyState state) {
  return Mutate(caller, "import", name, 0, [&](const keyring::Keyring& k, AdminOutcome* out) {
    return k.Import(algorithm, secret, state, clock_->Now(), &out->key_id);
  });
}

absl::StatusOr<AdminOutcome> Engine::SetPolicy(const Actor& caller, absl::string_view name,
                                               const v1::KeyringPolicy& policy) {
  return Mutate(caller, "set_policy", name, 0, [&](const keyring::Keyring& k, AdminOutcome*) {
    return k.WithPolicy(policy, options_.max_ttl);
  });
}

absl::StatusOr<AdminOutcome> Engine::CreateKeyring(const Actor& caller, absl::string_view name,
                                                   const v1::KeyringPolicy& policy,
                                                   keyring::Algorithm algorithm) {
  absl::StatusOr<AdminOutcome> result = [&]() -> absl::StatusOr<AdminOutcome> {
    if (name.empty()) return absl::InvalidArgumentError("name: required");
    if (absl::Status s = keyring::ValidateKeyringName(name); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("name: ", s.message()));
    }
    if (absl::Status s = keyring::ValidatePolicy(policy, options_.max_ttl); !s.ok()) return s;
    if (algorithm == v1::ALGORITHM_UNSPECIFIED) algorithm = v1::HMAC_SHA256;
    WriterGuard writer(this, Deadline(caller));
    if (!writer.status().ok()) return writer.status();
    absl::MutexLock lock(&write_mu_);
    if (registry_.load()->contains(name)) {
      return absl::AlreadyExistsError(absl::StrCat("name: keyring \"", name, "\" already exists"));
    }
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr =
        keyring::Keyring::Create(std::string(name), clock_->Now(), policy, algorithm);
    if (!kr.ok()) return kr.status();
    AdminOutcome out;
    out.key_id = (*kr)->primary().id();
    out.keyring = *kr;
    if (absl::Status s = Commit(name, Entry{}, *std::move(kr)); !s.ok()) return s;
    return out;
  }();
  Audit(caller, "create_keyring", name, 0, result);
  return result;
}

std::vector<std::shared_ptr<const keyring::Keyring>> Engine::ListKeyrings() const {
  std::shared_ptr<const Registry> reg = registry_.load(std::memory_order_acquire);
  std::vector<std::shared_ptr<const keyring::Keyring>> out;
  out.reserve(reg->size());
  for (const auto& [name, entry] : *reg) out.push_back(entry.keyring);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  return out;
}

int Engine::Tick() {
  int applied_total = 0;
  for (const auto& kr : ListKeyrings()) {
    std::vector<keyring::Keyring::Transition> applied;
    absl::StatusOr<AdminOutcome> r = [&]() -> absl::StatusOr<AdminOutcome> {
      WriterGuard writer(this, absl::Now() + options_.admin_wait);
      if (!writer.status().ok()) return writer.status();
      absl::MutexLock lock(&write_mu_);
      absl::StatusOr<Entry> e = Lookup(kr->name());
      if (!e.ok()) return e.status();
      absl::StatusOr<std::shared_ptr<const keyring::Keyring>> next =
          e->keyring->ApplyDue(clock_->Now(), &applied);
      if (!next.ok()) return next.status();
      AdminOutcome out;
      out.previous_primary_key_id = e->keyring->primary().id();
      if (*next == nullptr) return out;  // nothing due
      out.keyring = *next;
      if (absl::Status s = Commit(kr->name(), *e, *next); !s.ok()) return s;
      return out;
    }();
    if (!r.ok()) {
      Audit("scheduler", "tick", kr->name(), 0, r);
      continue;
    }
    for (const auto& t : applied) {
      AdminOutcome one = *r;
      one.key_id = t.key_id;
      Audit("scheduler", t.operation, kr->name(), t.key_id, one);
    }
    applied_total += static_cast<int>(applied.size());
  }
  return applied_total;
}

absl::StatusOr<bool> Engine::Refresh(absl::string_view name) {
  WriterGuard writer(this, absl::Now() + options_.admin_wait);
  if (!writer.status().ok()) return writer.status();
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<store::VersionedBlob> blob = store_->Get(name);
  if (!blob.ok()) return blob.status();
  std::shared_ptr<const Registry> reg = registry_.load();
  auto it = reg->find(name);
  if (it != reg->end() && it->second.store_version == blob->version) return false;
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = sealer_->Open(name, blob->data);
  if (!kr.ok()) return kr.status();
  auto next = std::make_shared<Registry>(*reg);
  (*next)[std::string(name)] = Entry{*std::move(kr), blob->version};
  registry_.store(std::move(next), std::memory_order_release);
  return true;
}

}  // namespace sessiontoken::engine
