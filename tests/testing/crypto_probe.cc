#include "tests/testing/crypto_probe.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace sessiontoken::testing {

const void* Sha256UpdateAddress() { return reinterpret_cast<const void*>(&SHA256_Update); }

const char* CryptoLibraryVersion() { return OpenSSL_version(OPENSSL_VERSION); }

}  // namespace sessiontoken::testing
