// SecretBytes: an owned buffer of key material that is wiped (OPENSSL_cleanse) when it is
// destroyed or overwritten. Move-only, so secrets are never copied by accident.
#ifndef SESSIONTOKEN_SERVER_CRYPTO_SECRET_BYTES_H_
#define SESSIONTOKEN_SERVER_CRYPTO_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace sessiontoken::crypto {

class SecretBytes {
 public:
  SecretBytes() = default;
  // A zero-filled buffer of `size` bytes.
  explicit SecretBytes(size_t size);
  // An explicit copy of `bytes` (the caller remains responsible for wiping its source).
  static SecretBytes CopyFrom(absl::string_view bytes);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // A view of the bytes, valid while this object lives. Never log it.
  absl::string_view view() const {
    return absl::string_view(reinterpret_cast<const char*>(data_), size_);
  }
  // Wipes and releases the buffer.
  void Clear();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Wipes `size` bytes at `p` in a way the compiler cannot elide.
void SecureWipe(void* p, size_t size);

}  // namespace sessiontoken::crypto

#endif  // SESSIONTOKEN_SERVER_CRYPTO_SECRET_BYTES_H_
