#include "server/engine/engine.h"

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
    return absl::InvalidArgumentError(absl::StrCat("max_payload_bytes: at most ",
                                                   token::kMaxPayloadSize));
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

absl::StatusOr<Engine::Entry> Engine::Lookup(absl::string_view name) const {
  if (name.empty()) return absl::InvalidArgumentError("keyring: required");
  std::shared_ptr<const Registry> reg = registry_.load(std::memory_order_acquire);
  auto it = reg->find(name);
  if (it == reg->end()) {
    if (absl::Status s = keyring::ValidateKeyringName(name); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("keyring \"", name, "\" not found"));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<const keyring::Keyring>> Engine::Get(
    absl::string_view name) const {
  absl::StatusOr<Entry> e = Lookup(name);
  if (!e.ok()) return e.status();
  return e->keyring;
}

absl::StatusOr<keyring::SignResult> Engine::Sign(absl::string_view name,
                                                 absl::string_view payload,
                                                 absl::string_view audience,
                                                 absl::Duration ttl) const {
  if (payload.size() > options_.max_payload_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("payload: ", payload.size(),
                                                   " bytes exceeds the limit of ",
                                                   options_.max_payload_bytes));
  }
  if (audience.size() > options_.max_audience_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("audience: ", audience.size(),
                                                   " bytes exceeds the limit of ",
                                                   options_.max_audience_bytes));
  }
  if (ttl < options_.min_ttl || ttl > options_.max_ttl) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl: ", absl::FormatDuration(ttl), " is outside the allowed range [",
                     absl::FormatDuration(options_.min_ttl), ", ",
                     absl::FormatDuration(options_.max_ttl), "]"));
  }
  absl::StatusOr<Entry> e = Lookup(name);
  if (!e.ok()) return e.status();
  return e->keyring->Sign(payload, audience, clock_->Now(), ttl);
}

absl::StatusOr<keyring::VerifyResult> Engine::Verify(absl::string_view name,
                                                     absl::string_view token,
                                                     absl::string_view audience) const {
  if (token.size() > options_.max_token_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("token: ", token.size(),
                                                   " bytes exceeds the limit of ",
                                                   options_.max_token_bytes));
  }
  if (audience.size() > options_.max_audience_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("audience: ", audience.size(),
                                                   " bytes exceeds the limit of ",
                                                   options_.max_audience_bytes));
  }
  absl::StatusOr<Entry> e = Lookup(name);
  if (!e.ok()) return e.status();
  return e->keyring->Verify(token, audience, clock_->Now(), options_.verify);
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

absl::StatusOr<RotateOutcome> Engine::Rotate(absl::string_view name) {
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<Entry> e = Lookup(name);
  if (!e.ok()) return e.status();
  RotateOutcome out;
  out.previous_primary_key_id = e->keyring->primary().id();
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> next =
      e->keyring->Rotate(clock_->Now(), &out.new_key_id);
  if (!next.ok()) return next.status();
  out.keyring = *next;
  if (absl::Status s = Commit(name, *e, *std::move(next)); !s.ok()) return s;
  return out;
}

}  // namespace sessiontoken::engine
