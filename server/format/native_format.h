// The native token format (token/native.h) over a keyring's keys: Sign with the primary,
// Verify by routing the token's key id to its key in O(1).
#ifndef SESSIONTOKEN_SERVER_FORMAT_NATIVE_FORMAT_H_
#define SESSIONTOKEN_SERVER_FORMAT_NATIVE_FORMAT_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/format/key_macs.h"
#include "server/format/result.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::format {

// Preconditions (the engine's limits): payload and audience within the token limits.
SignResult SignNative(const KeyMac& primary, absl::string_view payload, absl::string_view audience,
                      int64_t issued_at, int64_t expires_at);

VerifyResult VerifyNative(const keyring::Keyring& keyring, const KeyMacs& macs,
                          absl::string_view token, absl::string_view audience, absl::Time now,
                          const VerifyOptions& options);

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_NATIVE_FORMAT_H_
