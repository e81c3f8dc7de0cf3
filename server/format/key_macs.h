// KeyMacs: the MAC of every key of one keyring snapshot that still has material, built once
// per snapshot (Tink's PrimitiveSet): HMAC-SHA256 for native keys, and for Flask keys the
// itsdangerous-derived HMAC-SHA1 for Flask's default salt "cookie-session".
#ifndef SESSIONTOKEN_SERVER_FORMAT_KEY_MACS_H_
#define SESSIONTOKEN_SERVER_FORMAT_KEY_MACS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "server/crypto/hmac.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::format {

struct KeyMac {
  const keyring::Key* key = nullptr;  // owned by the snapshot KeyMacs was built from
  std::unique_ptr<crypto::Hmac> mac;
};

class KeyMacs {
 public:
  // Fails only when a key's material cannot key its MAC (which Key::New already excludes).
  static absl::StatusOr<KeyMacs> New(const keyring::Keyring& keyring);

  // The entry of key `id`, null when the key is absent or destroyed.
  const KeyMac* Find(uint32_t id) const;
  // Every entry, in the keyring's order (newest first).
  const std::vector<KeyMac>& all() const { return macs_; }
  // True when some key (any state but DESTROYED) is a Flask key.
  bool has_flask_keys() const { return has_flask_keys_; }

 private:
  std::vector<KeyMac> macs_;
  absl::flat_hash_map<uint32_t, size_t> by_id_;
  bool has_flask_keys_ = false;
};

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_KEY_MACS_H_
