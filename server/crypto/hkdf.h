// HKDF-SHA256 (RFC 5869) from BoringSSL: derives independent subkeys from one key, each for
// one purpose named by its `info` label (e.g. the payload-sealing key of a token key).
#ifndef SESSIONTOKEN_SERVER_CRYPTO_HKDF_H_
#define SESSIONTOKEN_SERVER_CRYPTO_HKDF_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/crypto/secret_bytes.h"

namespace sessiontoken::crypto {

// `length` bytes of HKDF-SHA256(ikm, salt, info). Fails on an empty `ikm` or a `length`
// of 0 or above 255 * 32.
absl::StatusOr<SecretBytes> HkdfSha256(absl::string_view ikm, absl::string_view salt,
                                       absl::string_view info, size_t length);

}  // namespace sessiontoken::crypto

#endif  // SESSIONTOKEN_SERVER_CRYPTO_HKDF_H_
