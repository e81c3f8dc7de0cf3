#include "server/crypto/hkdf.h"

#include <openssl/digest.h>
#include <openssl/hkdf.h>

#include "absl/status/status.h"

namespace sessiontoken::crypto {

absl::StatusOr<SecretBytes> HkdfSha256(absl::string_view ikm, absl::string_view salt,
                                       absl::string_view info, size_t length) {
  if (ikm.empty()) return absl::InvalidArgumentError("HKDF: empty input key");
  if (length == 0 || length > 255 * 32) {
    return absl::InvalidArgumentError("HKDF: output length out of range");
  }
  SecretBytes out(length);
  if (!HKDF(out.data(), out.size(), EVP_sha256(), reinterpret_cast<const uint8_t*>(ikm.data()),
            ikm.size(), reinterpret_cast<const uint8_t*>(salt.data()), salt.size(),
            reinterpret_cast<const uint8_t*>(info.data()), info.size())) {
    return absl::InternalError("HKDF failed");
  }
  return out;
}

}  // namespace sessiontoken::crypto
