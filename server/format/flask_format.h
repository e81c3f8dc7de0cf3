// The Flask cookie format (token/flask.h) over a keyring's keys. The format names no key:
// Verify tries the verify-capable Flask keys newest first (then the disabled ones, only to
// report KEY_DISABLED rather than BAD_SIGNATURE). The audience is itsdangerous's salt.
#ifndef SESSIONTOKEN_SERVER_FORMAT_FLASK_FORMAT_H_
#define SESSIONTOKEN_SERVER_FORMAT_FLASK_FORMAT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/format/key_macs.h"
#include "server/format/result.h"

namespace sessiontoken::format {

// Signs with `primary` (a Flask key). The cookie carries only the issue time (Verify applies
// max_age); `expires_at` is reported, not embedded. InvalidArgument when the cookie would be
// longer than token::kFlaskMaxTokenSize (what browsers keep), whatever the payload's size.
absl::StatusOr<SignResult> SignFlask(const KeyMac& primary, absl::string_view payload,
                                     absl::string_view audience, int64_t issued_at,
                                     int64_t expires_at);

VerifyResult VerifyFlask(const KeyMacs& macs, absl::string_view token, absl::string_view audience,
                         absl::Time now, const VerifyOptions& options);

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_FLASK_FORMAT_H_
