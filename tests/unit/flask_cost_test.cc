// The cost a forged Flask cookie can impose (issue: hardening, point 4): nothing is inflated
// before a key's MAC matched the compressed form, keyrings without a Flask key answer before
// any MAC, and the Flask signer of a salt is derived once per snapshot, not per call. zlib's
// inflate and token::DeriveFlaskSigner are counted by wrapping them at link time
// (tests/unit/CMakeLists.txt), so production code carries no test hook.
#include <zlib.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/format/keyring_signer.h"
#include "server/keyring/lifecycle.h"
#include "server/token/base64url.h"
#include "server/token/flask.h"
#include "tests/testing/signer.h"
#include "tests/testing/status_matchers.h"

namespace {
thread_local int g_inflate_calls = 0;
thread_local int g_derivations = 0;
}  // namespace

extern "C" {
int __real_inflate(z_streamp strm, int flush);
int __wrap_inflate(z_streamp strm, int flush) {
  ++g_inflate_calls;
  return __real_inflate(strm, flush);
}
}

#define ST_DERIVE_SYMBOL \
  "_ZN12sessiontoken5token17DeriveFlaskSignerEN4absl7debian311string_viewES3_"
absl::StatusOr<std::unique_ptr<sessiontoken::crypto::Hmac>> RealDerive(
    absl::string_view secret, absl::string_view salt) asm("__real_" ST_DERIVE_SYMBOL);
absl::StatusOr<std::unique_ptr<sessiontoken::crypto::Hmac>> CountedDerive(
    absl::string_view secret, absl::string_view salt) asm("__wrap_" ST_DERIVE_SYMBOL);
absl::StatusOr<std::unique_ptr<sessiontoken::crypto::Hmac>> CountedDerive(absl::string_view secret,
                                                                          absl::string_view salt) {
  ++g_derivations;
  return RealDerive(secret, salt);
}

namespace sessiontoken::keyring {
namespace {

using format::VerifyStatus;
using ::sessiontoken::testing::IsOk;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

// A compressed Flask cookie whose body inflates to 64 KiB (the limit) and whose signature is
// random: what an attacker can send without knowing any secret.
std::string ForgedCompressedCookie() {
  const std::string zeros(token::kFlaskMaxPayloadSize, '\0');
  std::string z(compressBound(zeros.size()), '\0');
  uLongf n = z.size();
  EXPECT_EQ(compress(reinterpret_cast<Bytef*>(z.data()), &n,
                     reinterpret_cast<const Bytef*>(zeros.data()), zeros.size()),
            Z_OK);
  z.resize(n);
  return "." + token::Base64UrlEncode(z) + ".aVW5AA." +
         token::Base64UrlEncode(crypto::RandomSecret(token::kFlaskSignatureSize).view());
}

std::shared_ptr<const Keyring> WithFlaskKey() {
  auto ring = Keyring::Create("shop", kNow);
  EXPECT_THAT(ring, IsOk());
  uint32_t id = 0;
  auto with = Import(**ring, v1::HMAC_SHA1_FLASK, "legacy-secret", v1::ACTIVE, kNow, &id);
  EXPECT_THAT(with, IsOk());
  return *with;
}

TEST(FlaskCostTest, AForgedCompressedCookieIsNeverInflated) {
  auto signer = Signer(WithFlaskKey());
  const std::string forged = ForgedCompressedCookie();
  ASSERT_TRUE(token::LooksLikeFlask(forged));
  g_inflate_calls = 0;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(signer->Verify(forged, "cookie-session", kNow).status, VerifyStatus::kBadSignature);
  }
  EXPECT_EQ(g_inflate_calls, 0);
}

TEST(FlaskCostTest, AKeyringWithoutFlaskKeysAnswersBeforeAnyWork) {
  auto ring = Keyring::Create("native-only", kNow);
  ASSERT_THAT(ring, IsOk());
  auto signer = Signer(*ring);
  g_inflate_calls = 0;
  g_derivations = 0;
  EXPECT_EQ(signer->Verify(ForgedCompressedCookie(), "my-salt", kNow).status,
            VerifyStatus::kUnknownKey);
  EXPECT_EQ(g_inflate_calls, 0);
  EXPECT_EQ(g_derivations, 0);
}

TEST(FlaskCostTest, AGenuineCompressedCookieIsInflatedOnceItsMacMatched) {
  auto signer = Signer(WithFlaskKey());
  auto legacy = token::DeriveFlaskSigner("legacy-secret", token::kFlaskDefaultSalt);
  ASSERT_THAT(legacy, IsOk());
  const std::string payload = "{\"cart\":\"" + std::string(500, 'x') + "\"}";
  const std::string cookie = token::SignFlask(**legacy, payload, absl::ToUnixSeconds(kNow));
  ASSERT_EQ(cookie.front(), '.');  // compressed
  g_inflate_calls = 0;
  auto r = signer->Verify(cookie, "cookie-session", kNow);
  EXPECT_EQ(r.status, VerifyStatus::kValid);
  EXPECT_EQ(r.payload, payload);
  EXPECT_GE(g_inflate_calls, 1);  // the counter sees inflate calls
}

TEST(FlaskCostTest, SignersOfASaltAreDerivedOncePerSnapshot) {
  auto signer = Signer(WithFlaskKey());
  auto derived = token::DeriveFlaskSigner("legacy-secret", "my-app.session");
  ASSERT_THAT(derived, IsOk());
  const std::string cookie = token::SignFlask(**derived, "{\"u\":1}", absl::ToUnixSeconds(kNow));
  g_derivations = 0;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(signer->Verify(cookie, "my-app.session", kNow).status, VerifyStatus::kValid);
    EXPECT_EQ(signer->Verify(cookie, "other-salt", kNow).status, VerifyStatus::kBadSignature);
  }
  EXPECT_EQ(g_derivations, 2);  // one Flask key, two salts
}

}  // namespace
}  // namespace sessiontoken::keyring
