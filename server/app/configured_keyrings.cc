#include "server/app/configured_keyrings.h"

#include "absl/strings/str_cat.h"

namespace sessiontoken::app {

absl::Status ApplyConfiguredKeyrings(engine::Engine& engine,
                                     const std::vector<v1::KeyringConfig>& keyrings) {
  for (const v1::KeyringConfig& k : keyrings) {
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> existing = engine.Get(k.name());
    absl::Status s;
    if (!existing.ok()) {
      s = engine.CreateKeyring("config", k.name(), k.policy(), k.algorithm()).status();
      // Another replica created it first: apply the policy to theirs as to any existing one.
      if (absl::IsAlreadyExists(s)) {
        existing = engine.Get(k.name());
        s = existing.status();
      }
    }
    if (existing.ok() &&
        (*existing)->policy().SerializeAsString() != k.policy().SerializeAsString()) {
      s = engine.SetPolicy("config", k.name(), k.policy()).status();
    }
    if (!s.ok())
      return absl::Status(s.code(), absl::StrCat("config keyring ", k.name(), ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace sessiontoken::app
