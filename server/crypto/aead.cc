#include "server/crypto/aead.h"

#include <openssl/aead.h>
#include <openssl/mem.h>

#include "absl/status/status.h"
#include "server/crypto/random.h"

namespace sessiontoken::crypto {

struct Aes256Gcm::State {
  EVP_AEAD_CTX ctx;
  // EVP_AEAD_CTX_cleanup frees nothing for AES-GCM and leaves the key schedule (whose first
  // round keys are the key itself) in `ctx`: wipe it before the memory is freed.
  ~State() {
    EVP_AEAD_CTX_cleanup(&ctx);
    OPENSSL_cleanse(&ctx, sizeof(ctx));
  }
};

Aes256Gcm::Aes256Gcm(std::unique_ptr<State> state) : state_(std::move(state)) {}
Aes256Gcm::~Aes256Gcm() = default;

absl::StatusOr<std::unique_ptr<Aes256Gcm>> Aes256Gcm::New(absl::string_view key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError("AES-256-GCM key must be 32 bytes");
  }
  auto state = std::make_unique<State>();
  EVP_AEAD_CTX_zero(&state->ctx);
  if (!EVP_AEAD_CTX_init(&state->ctx, EVP_aead_aes_256_gcm(),
                         reinterpret_cast<const uint8_t*>(key.data()), key.size(), kTagSize,
                         nullptr)) {
    return absl::InternalError("EVP_AEAD_CTX_init failed");
  }
  return std::unique_ptr<Aes256Gcm>(new Aes256Gcm(std::move(state)));
}

absl::StatusOr<std::string> Aes256Gcm::Seal(absl::string_view nonce, absl::string_view plaintext,
                                            absl::string_view aad) const {
  if (nonce.size() != kNonceSize) return absl::InvalidArgumentError("nonce must be 12 bytes");
  std::string out(plaintext.size() + kTagSize, '\0');
  size_t out_len = 0;
  if (!EVP_AEAD_CTX_seal(&state_->ctx, reinterpret_cast<uint8_t*>(out.data()), &out_len, out.size(),
                         reinterpret_cast<const uint8_t*>(nonce.data()), nonce.size(),
                         reinterpret_cast<const uint8_t*>(plaintext.data()), plaintext.size(),
                         reinterpret_cast<const uint8_t*>(aad.data()), aad.size())) {
    return absl::InternalError("AES-GCM seal failed");
  }
  out.resize(out_len);
  return out;
}

absl::StatusOr<SecretBytes> Aes256Gcm::Open(absl::string_view nonce,
                                            absl::string_view ciphertext_and_tag,
                                            absl::string_view aad) const {
  if (nonce.size() != kNonceSize) return absl::InvalidArgumentError("nonce must be 12 bytes");
  if (ciphertext_and_tag.size() < kTagSize) {
    return absl::DataLossError("ciphertext shorter than the GCM tag");
  }
  SecretBytes out(ciphertext_and_tag.size());
  size_t out_len = 0;
  if (!EVP_AEAD_CTX_open(&state_->ctx, out.data(), &out_len, out.size(),
                         reinterpret_cast<const uint8_t*>(nonce.data()), nonce.size(),
                         reinterpret_cast<const uint8_t*>(ciphertext_and_tag.data()),
                         ciphertext_and_tag.size(), reinterpret_cast<const uint8_t*>(aad.data()),
                         aad.size())) {
    return absl::DataLossError("authentication failed");
  }
  SecretBytes exact = SecretBytes::CopyFrom(out.view().substr(0, out_len));
  return exact;
}

absl::StatusOr<std::string> Aes256Gcm::Encrypt(absl::string_view plaintext,
                                               absl::string_view aad) const {
  char nonce[kNonceSize];
  RandomFill(nonce, sizeof(nonce));
  absl::StatusOr<std::string> ct = Seal(absl::string_view(nonce, sizeof(nonce)), plaintext, aad);
  if (!ct.ok()) return ct.status();
  return std::string(nonce, sizeof(nonce)) + *ct;
}

absl::StatusOr<SecretBytes> Aes256Gcm::Decrypt(absl::string_view sealed,
                                               absl::string_view aad) const {
  if (sealed.size() < kNonceSize + kTagSize) {
    return absl::DataLossError("sealed data too short");
  }
  return Open(sealed.substr(0, kNonceSize), sealed.substr(kNonceSize), aad);
}

}  // namespace sessiontoken::crypto
