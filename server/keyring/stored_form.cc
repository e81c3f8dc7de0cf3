#include "server/keyring/stored_form.h"

#include <utility>
#include <vector>

#include "server/crypto/secret_bytes.h"

namespace sessiontoken::keyring {

void ToStored(const Keyring& k, v1::StoredKeyring* out) {
  out->Clear();
  out->set_name(k.name());
  out->set_revision(k.revision());
  out->set_created_unix(absl::ToUnixSeconds(k.created_at()));
  *out->mutable_policy() = k.policy();
  for (const auto& key : k.keys()) {
    v1::StoredKey* sk = out->add_keys();
    const KeyMetadata& md = key->metadata();
    sk->set_id(md.id);
    sk->set_algorithm(md.algorithm);
    sk->set_state(md.state);
    sk->set_created_unix(absl::ToUnixSeconds(md.created_at));
    sk->set_state_changed_unix(absl::ToUnixSeconds(md.state_changed_at));
    absl::string_view m = key->material();
    // Written in place: protobuf 3.21's set_material(ptr, size) goes through a temporary
    // std::string that is freed unwiped (a copy of the key in freed memory at every seal).
    sk->mutable_material()->assign(m.data(), m.size());
  }
}

absl::StatusOr<std::shared_ptr<const Keyring>> FromStored(v1::StoredKeyring* stored) {
  Keyring::Keys keys;
  absl::Status error;
  for (v1::StoredKey& sk : *stored->mutable_keys()) {
    KeyMetadata md{sk.id(), sk.algorithm(), sk.state(), absl::FromUnixSeconds(sk.created_unix()),
                   absl::FromUnixSeconds(sk.state_changed_unix())};
    crypto::SecretBytes material = crypto::SecretBytes::CopyFrom(sk.material());
    crypto::SecureWipe(sk.mutable_material()->data(), sk.material().size());
    if (!error.ok()) continue;  // keep wiping the remaining material
    absl::StatusOr<std::shared_ptr<const Key>> key = Key::New(md, std::move(material));
    if (!key.ok()) {
      error = key.status();
      continue;
    }
    keys.push_back(*std::move(key));
  }
  if (!error.ok()) return error;
  return Keyring::New(stored->name(), stored->revision(),
                      absl::FromUnixSeconds(stored->created_unix()), std::move(keys),
                      stored->policy());
}

}  // namespace sessiontoken::keyring
