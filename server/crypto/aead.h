// Aes256Gcm: AES-256-GCM authenticated encryption, used to seal keyrings with the KEK.
#ifndef SESSIONTOKEN_SERVER_CRYPTO_AEAD_H_
#define SESSIONTOKEN_SERVER_CRYPTO_AEAD_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/crypto/secret_bytes.h"

namespace sessiontoken::crypto {

class Aes256Gcm {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;

  // `key` must be exactly 32 bytes.
  static absl::StatusOr<std::unique_ptr<Aes256Gcm>> New(absl::string_view key);
  ~Aes256Gcm();

  // Random nonce: returns nonce || ciphertext || tag.
  absl::StatusOr<std::string> Encrypt(absl::string_view plaintext, absl::string_view aad) const;
  // Inverse of Encrypt. Fails (without detail) when the tag does not authenticate.
  absl::StatusOr<SecretBytes> Decrypt(absl::string_view sealed, absl::string_view aad) const;

  // Explicit-nonce primitives (for known-answer tests): ciphertext || tag.
  absl::StatusOr<std::string> Seal(absl::string_view nonce, absl::string_view plaintext,
                                   absl::string_view aad) const;
  absl::StatusOr<SecretBytes> Open(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                                   absl::string_view aad) const;

 private:
  struct State;
  explicit Aes256Gcm(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace sessiontoken::crypto

#endif  // SESSIONTOKEN_SERVER_CRYPTO_AEAD_H_
