// KeyMacs: the MAC of every key of one keyring snapshot that still has material, built once
// per snapshot (Tink's PrimitiveSet): HMAC-SHA256 and the payload-sealing AEAD for native
// keys, and for Flask keys the itsdangerous-derived HMAC-SHA1 for Flask's default salt
// "cookie-session". Flask signers
// for other salts (audiences) are derived once per salt, for every Flask key at a time, and
// kept with the snapshot (a bounded number of salts; beyond, derived per call).
#ifndef SESSIONTOKEN_SERVER_FORMAT_KEY_MACS_H_
#define SESSIONTOKEN_SERVER_FORMAT_KEY_MACS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/crypto/aead.h"
#include "server/crypto/hmac.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::format {

struct KeyMac {
  const keyring::Key* key = nullptr;  // owned by the snapshot KeyMacs was built from
  std::unique_ptr<crypto::Hmac> mac;
  // Native keys: the AEAD that seals v2 payloads (token::DeriveSealKey); null for Flask keys.
  std::unique_ptr<crypto::Aes256Gcm> seal;
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

  // The itsdangerous signer of Flask key `km` (an entry of all()) for `salt`: its MAC for
  // the default salt, else the cached derivation; null only when the derivation failed.
  // Past kMaxCachedSalts salts, derives into *scratch instead. Thread-safe.
  const crypto::Hmac* FlaskSigner(const KeyMac& km, absl::string_view salt,
                                  std::unique_ptr<crypto::Hmac>* scratch) const;
  static constexpr size_t kMaxCachedSalts = 64;

 private:
  // Per salt: the derived signer of every entry of macs_ (null for non-Flask keys).
  struct SaltCache {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<std::unique_ptr<crypto::Hmac>>> by_salt
        ABSL_GUARDED_BY(mu);
  };
  const std::vector<std::unique_ptr<crypto::Hmac>>* SignersFor(absl::string_view salt) const;

  std::vector<KeyMac> macs_;
  absl::flat_hash_map<uint32_t, size_t> by_id_;
  bool has_flask_keys_ = false;
  std::unique_ptr<SaltCache> salts_ = std::make_unique<SaltCache>();
};

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_KEY_MACS_H_
