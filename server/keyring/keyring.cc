#include "server/keyring/keyring.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/random.h"

namespace sessiontoken::keyring {

absl::Status ValidateKeyringName(absl::string_view name) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  };
  if (name.empty() || name.size() > 63 || !std::all_of(name.begin(), name.end(), ok_char) ||
      name[0] == '_' || name[0] == '-') {
    return absl::InvalidArgumentError(
        "keyring: name must be 1-63 characters of a-z, 0-9, '_' and '-', starting with a "
        "letter or digit");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::New(std::string name, uint64_t revision,
                                                            absl::Time created_at, Keys keys,
                                                            v1::KeyringPolicy policy) {
  if (absl::Status s = ValidateKeyringName(name); !s.ok()) return s;
  std::shared_ptr<Keyring> kr(new Keyring());
  kr->name_ = std::move(name);
  kr->revision_ = revision;
  kr->created_at_ = created_at;
  kr->policy_ = std::move(policy);
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return a->metadata().created_at > b->metadata().created_at;
  });
  kr->keys_ = std::move(keys);
  for (const auto& k : kr->keys_) {
    if (!kr->by_id_.emplace(k->id(), k.get()).second) {
      return absl::FailedPreconditionError(
          absl::StrCat("keyring ", kr->name_, ": duplicate key id ", k->id()));
    }
    if (k->state() == v1::PRIMARY) {
      if (kr->primary_ != nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("keyring ", kr->name_, ": more than one primary key"));
      }
      kr->primary_ = k.get();
    }
  }
  if (kr->primary_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("keyring ", kr->name_, ": no primary key"));
  }
  return std::shared_ptr<const Keyring>(std::move(kr));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Create(std::string name, absl::Time now,
                                                               v1::KeyringPolicy policy,
                                                               Algorithm algorithm) {
  uint32_t id = 0;
  while (id == 0) id = crypto::RandomUint32();
  absl::StatusOr<std::shared_ptr<const Key>> key = Key::Generate(id, algorithm, v1::PRIMARY, now);
  if (!key.ok()) return key.status();
  return New(std::move(name), 1, now, {*std::move(key)}, std::move(policy));
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Next(Keys keys) const {
  return New(name_, revision_ + 1, created_at_, std::move(keys), policy_);
}

absl::StatusOr<std::shared_ptr<const Keyring>> Keyring::Next(Keys keys,
                                                             v1::KeyringPolicy policy) const {
  return New(name_, revision_ + 1, created_at_, std::move(keys), std::move(policy));
}

const Key* Keyring::Find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

uint32_t Keyring::NewKeyId() const {
  for (;;) {
    uint32_t id = crypto::RandomUint32();
    if (id != 0 && Find(id) == nullptr) return id;
  }
}

}  // namespace sessiontoken::keyring
