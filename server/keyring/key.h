// Key: one immutable key version of a keyring: metadata plus its secret material. State
// changes produce a new Key sharing the same material. The MACs built from the material
// belong to the token formats (server/format/key_macs.h), not to the key model.
#ifndef SESSIONTOKEN_SERVER_KEYRING_KEY_H_
#define SESSIONTOKEN_SERVER_KEYRING_KEY_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/crypto/secret_bytes.h"
#include "sessiontoken/v1/common.pb.h"

namespace sessiontoken::keyring {

using ::sessiontoken::v1::Algorithm;
using ::sessiontoken::v1::KeyState;

struct KeyMetadata {
  uint32_t id = 0;
  Algorithm algorithm = v1::ALGORITHM_UNSPECIFIED;
  KeyState state = v1::KEY_STATE_UNSPECIFIED;
  absl::Time created_at;
  absl::Time state_changed_at;
};

// Size of generated key material.
inline constexpr size_t kKeyMaterialSize = 32;

class Key {
 public:
  // Validates the metadata (non-zero id, known algorithm and state) and the material:
  // empty exactly when the state is DESTROYED, at least 16 bytes for native keys.
  static absl::StatusOr<std::shared_ptr<const Key>> New(KeyMetadata metadata,
                                                        crypto::SecretBytes material);
  // A fresh random key in `state`.
  static absl::StatusOr<std::shared_ptr<const Key>> Generate(uint32_t id, Algorithm algorithm,
                                                             KeyState state, absl::Time now);

  const KeyMetadata& metadata() const { return metadata_; }
  uint32_t id() const { return metadata_.id; }
  KeyState state() const { return metadata_.state; }
  // True for STAGED, PRIMARY and ACTIVE.
  bool CanVerify() const;
  Algorithm algorithm() const { return metadata_.algorithm; }
  // Raw material, for building MACs and sealing into the store only. Empty once destroyed.
  absl::string_view material() const { return material_ ? material_->view() : absl::string_view(); }

  // The same key in another state (DESTROYED drops the material). No legality checks here:
  // the state machine lives in Keyring.
  std::shared_ptr<const Key> WithState(KeyState state, absl::Time now) const;

 private:
  using Material = crypto::SecretBytes;  // wiped when the last Key sharing it goes
  Key(KeyMetadata metadata, std::shared_ptr<const Material> material)
      : metadata_(metadata), material_(std::move(material)) {}

  KeyMetadata metadata_;
  std::shared_ptr<const Material> material_;
};

}  // namespace sessiontoken::keyring

#endif  // SESSIONTOKEN_SERVER_KEYRING_KEY_H_
