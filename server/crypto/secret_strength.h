// EstimateSecretStrength: how guessable an imported secret (e.g. a Flask SECRET_KEY) looks.
// A key that signed cookies can be recovered offline from one cookie with a wordlist or a
// short brute force, so ImportKey warns (it cannot refuse: cookies signed with it exist).
// A rough, conservative estimate: a secret it calls weak is weak; one it accepts may not be
// strong (it knows nothing about where the secret came from).
#ifndef SESSIONTOKEN_SERVER_CRYPTO_SECRET_STRENGTH_H_
#define SESSIONTOKEN_SERVER_CRYPTO_SECRET_STRENGTH_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace sessiontoken::crypto {

// Below these a secret is weak.
inline constexpr size_t kMinStrongSecretBytes = 16;
inline constexpr double kMinStrongSecretBits = 64;

struct SecretStrength {
  // length x log2(alphabet), where the alphabet is the smaller of the character classes
  // used (lower, upper, digits, punctuation, other bytes) and the number of distinct
  // characters, over the shortest repeating unit of the secret. 0 for a well-known secret.
  double estimated_bits = 0;
  bool weak = false;
  // Why it is weak, for operators: never quotes the secret or its exact length. Empty
  // when not weak.
  std::string reason;
  // The operator-facing warning (reason and what to do), empty when not weak.
  std::string warning;
};

// Estimates `secret`'s strength. Pure; the secret is only read.
SecretStrength EstimateSecretStrength(absl::string_view secret);

}  // namespace sessiontoken::crypto

#endif  // SESSIONTOKEN_SERVER_CRYPTO_SECRET_STRENGTH_H_
