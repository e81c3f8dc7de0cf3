// Validity: the time checks every token format shares (not yet valid beyond the allowed
// clock skew; expired), on Unix seconds that may come from a token and so saturate instead
// of overflowing.
#ifndef SESSIONTOKEN_SERVER_FORMAT_VALIDITY_H_
#define SESSIONTOKEN_SERVER_FORMAT_VALIDITY_H_

#include <cstdint>

#include "absl/time/time.h"
#include "server/format/result.h"

namespace sessiontoken::format {

// a + b clamped to the int64 range.
int64_t SaturatingAdd(int64_t a, int64_t b);

// How the expiry instant itself counts: native tokens are expired at expires_at,
// itsdangerous (Flask) only once the age exceeds max_age.
enum class ExpiryEdge { kExpiredAt, kValidAt };

// kNotYetValid, kExpired or kValid for a token issued at `issued_at` and expiring at
// `expires_at` (Unix seconds), checked at `now`.
VerifyStatus CheckValidity(int64_t issued_at, int64_t expires_at, absl::Time now,
                           absl::Duration max_clock_skew, ExpiryEdge edge);

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_VALIDITY_H_
