// Constant-time comparison: the only comparison used for MACs anywhere in the service.
#ifndef SESSIONTOKEN_SERVER_CRYPTO_CONSTANT_TIME_H_
#define SESSIONTOKEN_SERVER_CRYPTO_CONSTANT_TIME_H_

#include "absl/strings/string_view.h"

namespace sessiontoken::crypto {

// Constant-time equality of two byte strings (their length is not secret).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace sessiontoken::crypto

#endif  // SESSIONTOKEN_SERVER_CRYPTO_CONSTANT_TIME_H_
