// The results of signing and verifying a token with a keyring, shared by every token
// format. Verify never fails as a call: every problem with a token is a VerifyStatus.
#ifndef SESSIONTOKEN_SERVER_FORMAT_RESULT_H_
#define SESSIONTOKEN_SERVER_FORMAT_RESULT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sessiontoken::format {

// Why a token verified or not (VerifyResponse.Result on the wire).
enum class VerifyStatus {
  kValid,          // MAC checks out under a verify-capable key, within its validity
  kMalformed,      // not a token of any supported format (strict parse failed)
  kUnknownKey,     // names a key this keyring does not have (Flask: no Flask key at all)
  kBadSignature,   // the MAC does not match
  kExpired,        // past expiry (Flask: older than max_age)
  kNotYetValid,    // issued further in the future than the allowed clock skew
  kKeyDisabled,    // signed by a DISABLED or DESTROYED key
  kWrongAudience,  // names another audience (a diagnosis: see docs/token-format.md)
  kRevoked,        // genuine and within its validity, but its session was revoked
};
// The wire name ("VALID", "BAD_SIGNATURE"...).
absl::string_view VerifyStatusName(VerifyStatus s);

// A token issued by Sign.
struct SignResult {
  std::string token;
  uint32_t key_id = 0;
  int64_t issued_at = 0;   // Unix seconds
  int64_t expires_at = 0;  // Unix seconds
  // Native v2 tokens: the random token id, as 22 base64url characters (TokenIdText); empty
  // for formats without one (Flask).
  std::string token_id;
};

// What Verify found. Fields beyond `status` are set as far as verification got.
struct VerifyResult {
  VerifyStatus status = VerifyStatus::kMalformed;
  uint32_t key_id = 0;    // set when the token named (or matched) a key
  int64_t issued_at = 0;  // set when the MAC checked out
  int64_t expires_at = 0;
  // Native v2 tokens, set when the MAC checked out (whatever the status after it): the
  // subject given at Sign (may be empty) and the token id (22 base64url characters, as in
  // SignResult). Empty for v1 and Flask tokens.
  std::string subject;
  std::string token_id;
  std::string payload;  // set only when status == kValid (a sealed payload: the plaintext)
  // Valid, but signed by a key that is no longer primary: re-issue the token.
  bool refresh_recommended = false;
};

// Time bounds Verify applies; the engine fills them from its limits and the keyring policy.
struct VerifyOptions {
  // How far in the future a token's issued-at may be (clock skew between replicas).
  absl::Duration max_clock_skew = absl::Seconds(30);
  // Formats without an expiry (Flask): tokens older than this are EXPIRED.
  absl::Duration max_age = absl::Hours(24 * 31);
};

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_RESULT_H_
