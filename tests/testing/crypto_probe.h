// Probes for the BoringSSL isolation test (tests/unit/isolation_test.cc): which crypto
// library the process's static BoringSSL is, and where the SHA-256 our HMAC runs on lives.
#ifndef SESSIONTOKEN_TESTS_TESTING_CRYPTO_PROBE_H_
#define SESSIONTOKEN_TESTS_TESTING_CRYPTO_PROBE_H_

namespace sessiontoken::testing {

// The address of SHA256_Update as this link resolved it (the symbol server/crypto/hmac.cc
// calls: symbol resolution is global to one link).
const void* Sha256UpdateAddress();
// The version string of the crypto library providing it (must name BoringSSL).
const char* CryptoLibraryVersion();

}  // namespace sessiontoken::testing

#endif  // SESSIONTOKEN_TESTS_TESTING_CRYPTO_PROBE_H_
