// Native token v2 through the engine: the subject and token id at Sign and Verify, sealed
// payloads under a keyring policy (switching on and off, older tokens still verifying),
// and the refusals for Flask-format keyrings.
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/token/base64url.h"
#include "server/token/native.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::engine {
namespace {

using format::VerifyStatus;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;

class EngineV2Test : public ::testing::Test {
 protected:
  EngineV2Test() : clock_(absl::FromUnixSeconds(1800000000)) {
    auto e = Engine::New(std::make_unique<store::MemoryStore>(),
                         *store::Sealer::New(crypto::RandomSecret(32)), &clock_, {});
    EXPECT_THAT(e, IsOk()) << e.status();
    engine_ = *std::move(e);
  }
  v1::KeyringPolicy Sealed(bool on) {
    v1::KeyringPolicy p;
    p.set_seal_payloads(on);
    return p;
  }

  keyring::FakeClock clock_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineV2Test, SubjectAndTokenIdComeBackFromVerify) {
  auto s = engine_->Sign("default", "payload", "web", absl::Hours(1), nullptr, "user-42");
  ASSERT_THAT(s, IsOk());
  EXPECT_TRUE(absl::StartsWith(s->token, "st2."));
  EXPECT_EQ(s->token_id.size(), 22u);  // 128 bits in base64url
  auto v = engine_->Verify("default", s->token, "web");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->status, VerifyStatus::kValid);
  EXPECT_EQ(v->subject, "user-42");
  EXPECT_EQ(v->token_id, s->token_id);
  EXPECT_EQ(v->issued_at, 1800000000);
  EXPECT_EQ(v->payload, "payload");
  // Every Sign draws a new id; no subject is fine too.
  auto s2 = engine_->Sign("default", "payload", "web", absl::Hours(1));
  ASSERT_THAT(s2, IsOk());
  EXPECT_NE(s2->token_id, s->token_id);
  EXPECT_EQ(engine_->Verify("default", s2->token, "web")->subject, "");
  // The outcome of a genuine but expired token still names its session (for revocation
  // checks and logs); a forged one names nothing.
  clock_.Advance(absl::Hours(2));
  auto expired = engine_->Verify("default", s->token, "web");
  EXPECT_EQ(expired->status, VerifyStatus::kExpired);
  EXPECT_EQ(expired->token_id, s->token_id);
  EXPECT_TRUE(expired->payload.empty());
  auto wrong = engine_->Verify("default", s->token, "api");
  EXPECT_TRUE(wrong->subject.empty());
  EXPECT_TRUE(wrong->token_id.empty());
}

TEST_F(EngineV2Test, SubjectLimits) {
  EXPECT_THAT(engine_->Sign("default", "p", "", absl::Hours(1), nullptr, std::string(128, 's')),
              IsOk());
  EXPECT_THAT(engine_->Sign("default", "p", "", absl::Hours(1), nullptr, std::string(129, 's')),
              StatusIs(absl::StatusCode::kInvalidArgument, "subject: 129 bytes exceeds"));
}

// A payload that fits the raw limit but not the cookie with a long subject and sealing.
TEST_F(EngineV2Test, TokensStayUnderTheCookieLimit) {
  EngineOptions options;
  options.limits.max_payload_bytes = 3000;
  auto e = Engine::New(std::make_unique<store::MemoryStore>(),
                       *store::Sealer::New(crypto::RandomSecret(32)), &clock_, options);
  ASSERT_THAT(e, IsOk());
  ASSERT_THAT((*e)->SetPolicy("t", "default", Sealed(true)), IsOk());
  const size_t fits = token::kMaxBodySize - token::kV2Overhead - 128 - token::kSealOverhead;
  auto s = (*e)->Sign("default", std::string(fits, 'x'), "", absl::Hours(1), nullptr,
                      std::string(128, 's'));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->token.size(), token::kMaxTokenSize);
  EXPECT_THAT((*e)->Sign("default", std::string(fits + 1, 'x'), "", absl::Hours(1), nullptr,
                         std::string(128, 's')),
              StatusIs(absl::StatusCode::kInvalidArgument, "payload: with this subject"));
  EXPECT_THAT((*e)->Sign("default", std::string(3000, 'x'), "", absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, "payload"));
}

TEST_F(EngineV2Test, SealedKeyringHidesThePayloadAndOlderTokensKeepVerifying) {
  const std::string secret = "{\"user\":42,\"ssn\":\"078-05-1120\"}";
  auto clear = engine_->Sign("default", secret, "web", absl::Hours(1), nullptr, "u42");
  ASSERT_THAT(clear, IsOk());
  ASSERT_THAT(engine_->SetPolicy("ops", "default", Sealed(true)), IsOk());
  auto sealed = engine_->Sign("default", secret, "web", absl::Hours(1), nullptr, "u42");
  ASSERT_THAT(sealed, IsOk());
  auto parsed = token::ParseNative(sealed->token);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->sealed());
  EXPECT_EQ(parsed->payload().find("078-05"), absl::string_view::npos);
  std::string body;
  ASSERT_TRUE(token::Base64UrlDecodeStrict(absl::string_view(sealed->token).substr(4), &body));
  EXPECT_EQ(body.find("078-05"), std::string::npos);
  EXPECT_EQ(sealed->token.size(),  // 28 more body bytes: 12 nonce + 16 tag
            token::NativeV2TokenSize(3, secret.size() + 28, false));
  EXPECT_EQ(clear->token.size(), token::NativeV2TokenSize(3, secret.size(), false));
  for (const auto* t : {&*clear, &*sealed}) {
    auto v = engine_->Verify("default", t->token, "web");
    ASSERT_THAT(v, IsOk());
    EXPECT_EQ(v->status, VerifyStatus::kValid);
    EXPECT_EQ(v->payload, secret);
    EXPECT_EQ(v->subject, "u42");
  }
  // Rotation: a sealed token of the old (now active) key still opens; switching sealing off
  // keeps sealed tokens verifying.
  ASSERT_THAT(engine_->Rotate("ops", "default", /*promote_now=*/true), IsOk());
  ASSERT_THAT(engine_->SetPolicy("ops", "default", Sealed(false)), IsOk());
  auto v = engine_->Verify("default", sealed->token, "web");
  EXPECT_EQ(v->status, VerifyStatus::kValid);
  EXPECT_EQ(v->payload, secret);
  EXPECT_TRUE(v->refresh_recommended);
  auto fresh = engine_->Sign("default", secret, "web", absl::Hours(1));
  EXPECT_FALSE(token::ParseNative(fresh->token)->sealed());
}

TEST_F(EngineV2Test, CreateKeyringSealed) {
  ASSERT_THAT(engine_->CreateKeyring("ops", "vault", Sealed(true)), IsOk());
  EXPECT_TRUE((*engine_->Get("vault"))->policy().seal_payloads());
  auto s = engine_->Sign("vault", "secret", "", absl::Hours(1));
  ASSERT_THAT(s, IsOk());
  EXPECT_TRUE(token::ParseNative(s->token)->sealed());
  EXPECT_EQ(engine_->Verify("vault", s->token, "")->payload, "secret");
}

// The Flask format has neither a subject nor a sealed payload: refused with a clear error.
TEST_F(EngineV2Test, FlaskKeyringsRefuseSubjectAndSealing) {
  ASSERT_THAT(engine_->CreateKeyring("t", "legacy", {}, v1::HMAC_SHA1_FLASK), IsOk());
  EXPECT_THAT(engine_->Sign("legacy", "{}", "cookie-session", absl::Hours(1), nullptr, "u1"),
              StatusIs(absl::StatusCode::kInvalidArgument, "subject: keyring legacy signs Flask"));
  auto s = engine_->Sign("legacy", "{}", "cookie-session", absl::Hours(1));
  ASSERT_THAT(s, IsOk());
  EXPECT_TRUE(s->token_id.empty());
  EXPECT_THAT(engine_->SetPolicy("t", "legacy", Sealed(true)),
              StatusIs(absl::StatusCode::kFailedPrecondition, "policy.seal_payloads"));
  EXPECT_FALSE((*engine_->Get("legacy"))->policy().seal_payloads());
  EXPECT_THAT(engine_->CreateKeyring("t", "legacy2", Sealed(true), v1::HMAC_SHA1_FLASK),
              StatusIs(absl::StatusCode::kFailedPrecondition, "policy.seal_payloads"));
  EXPECT_THAT(engine_->Get("legacy2"), StatusIs(absl::StatusCode::kNotFound));
  // A sealed keyring whose primary later becomes a Flask key fails closed: no cookie with
  // the payload in clear.
  ASSERT_THAT(engine_->SetPolicy("t", "default", Sealed(true)), IsOk());
  ASSERT_THAT(engine_->Rotate("t", "default", true, v1::HMAC_SHA1_FLASK), IsOk());
  EXPECT_THAT(engine_->Sign("default", "{}", "cookie-session", absl::Hours(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, "keyring default seals payloads"));
}

}  // namespace
}  // namespace sessiontoken::engine
