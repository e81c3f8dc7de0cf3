// EstimateSecretStrength (issue 17 point 9): the secrets of tutorials and framework defaults,
// short or low-variety secrets are weak; random ones of the usual generators are not; the
// verdict never quotes the secret.
#include "server/crypto/secret_strength.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"

namespace sessiontoken::crypto {
namespace {

void ExpectWeak(const std::string& secret, absl::string_view why) {
  SCOPED_TRACE(secret);
  const SecretStrength st = EstimateSecretStrength(secret);
  EXPECT_TRUE(st.weak);
  EXPECT_TRUE(absl::StrContains(st.reason, why)) << st.reason;
  EXPECT_TRUE(absl::StartsWith(st.warning, "weak secret: ")) << st.warning;
  EXPECT_TRUE(absl::StrContains(st.warning, "rotate right after importing")) << st.warning;
  EXPECT_TRUE(absl::StrContains(st.warning, "verify window")) << st.warning;
  // The variable part never quotes the secret (the rest is fixed text).
  if (secret.size() >= 8) {
    EXPECT_FALSE(absl::StrContains(st.reason, secret));
  }
}

void ExpectNotWeak(const std::string& secret) {
  SCOPED_TRACE(absl::CEscape(secret));
  const SecretStrength st = EstimateSecretStrength(secret);
  EXPECT_FALSE(st.weak) << st.reason;
  EXPECT_TRUE(st.warning.empty());
  EXPECT_GE(st.estimated_bits, kMinStrongSecretBits);
}

TEST(SecretStrengthTest, WellKnownExampleSecretsAreWeak) {
  for (const char* s :
       {"mysecret123", "dev", "secret", "SECRET_KEY", "super secret key", "Super-Secret-Key!",
        "you-will-never-guess", "hard to guess string", "keyboard cat", "changeme",
        "change-me-please", "your-256-bit-secret", "_5#y2L\"F4Q8z\n\xec]/", "flask-secret-key-2024",
        "correct horse battery staple", "mysecretmysecretmysecret"}) {
    ExpectWeak(s, "well-known");
  }
}

TEST(SecretStrengthTest, ShortSecretsAreWeak) {
  ExpectWeak("x7#Qp9!zR2", "shorter than 16 bytes");
  ExpectWeak(std::string("\x01\xfe\x80\x7f\x33\x99\xaa\x10\x05\x66\xcc\xdd\xee\x42\x24", 15),
             "shorter than 16 bytes");
}

TEST(SecretStrengthTest, LowVarietyOrRepeatedSecretsAreWeak) {
  ExpectWeak(std::string(40, 'a'), "estimated strength");
  ExpectWeak("abababababababababababababab", "estimated strength");
  ExpectWeak("q8Zq8Zq8Zq8Zq8Zq8Zq8Zq8Zq8Zq8Z", "estimated strength");  // period 3
  ExpectWeak("20240101202401012024", "estimated strength");            // 20 digits, period 8
}

TEST(SecretStrengthTest, RandomSecretsOfTheUsualGeneratorsAreNotWeak) {
  for (int i = 0; i < 50; ++i) {
    const SecretBytes raw = RandomSecret(32);  // os.urandom(32), 32-byte random secret
    ExpectNotWeak(std::string(raw.view()));
    ExpectNotWeak(absl::BytesToHexString(raw.view()));  // secrets.token_hex(32)
    std::string b64;
    absl::WebSafeBase64Escape(raw.view(), &b64);  // secrets.token_urlsafe(32)
    ExpectNotWeak(b64);
    ExpectNotWeak(absl::BytesToHexString(raw.view().substr(0, 16)));  // token_hex(16)
  }
}

}  // namespace
}  // namespace sessiontoken::crypto
