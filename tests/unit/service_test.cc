#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/service/admin_service.h"
#include "server/service/tokens_service.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"

namespace sessiontoken::service {
namespace {

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() : clock_(absl::FromUnixSeconds(1800000000)) {
    engine_ = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                   *store::Sealer::New(crypto::RandomSecret(32)), &clock_, {});
  }
  v1::SignRequest SignReq(std::string payload, int64_t ttl_s = 3600) {
    v1::SignRequest r;
    r.set_keyring("default");
    r.set_payload(std::move(payload));
    r.mutable_ttl()->set_seconds(ttl_s);
    r.set_audience("web");
    return r;
  }

  keyring::FakeClock clock_;
  std::unique_ptr<engine::Engine> engine_;
};

TEST_F(ServiceTest, SignVerifyRotateListTranslateFaithfully) {
  SessionTokensService tokens(engine_.get());
  KeyAdminService admin(engine_.get());
  v1::SignResponse s;
  ASSERT_TRUE(tokens.DoSign(SignReq("hi"), &s).ok());
  EXPECT_EQ(s.issued_at().seconds(), 1800000000);
  EXPECT_EQ(s.expires_at().seconds(), 1800003600);

  v1::VerifyRequest vr;
  vr.set_keyring("default");
  vr.set_token(s.token());
  vr.set_audience("web");
  v1::VerifyResponse v;
  ASSERT_TRUE(tokens.DoVerify(vr, &v).ok());
  EXPECT_EQ(v.result(), v1::VerifyResponse::VALID);
  EXPECT_EQ(v.payload(), "hi");
  EXPECT_EQ(v.key_id(), s.key_id());
  EXPECT_FALSE(v.refresh_recommended());
  EXPECT_EQ(s.token_id().size(), 22u);
  EXPECT_EQ(v.token_id(), s.token_id());
  EXPECT_EQ(v.subject(), "");

  grpc::ServerContext ctx;
  v1::RotateRequest rr;
  rr.set_keyring("default");
  v1::RotateResponse rot;
  ASSERT_TRUE(admin.Rotate(&ctx, &rr, &rot).ok());
  EXPECT_EQ(rot.previous_primary_key_id(), s.key_id());
  EXPECT_EQ(rot.new_key().state(), v1::PRIMARY);
  EXPECT_EQ(rot.revision(), 2u);

  v1::VerifyResponse v2;
  ASSERT_TRUE(tokens.DoVerify(vr, &v2).ok());
  EXPECT_EQ(v2.result(), v1::VerifyResponse::VALID);
  EXPECT_TRUE(v2.refresh_recommended());

  v1::ListKeysRequest lr;
  lr.set_keyring("default");
  v1::ListKeysResponse list;
  ASSERT_TRUE(admin.ListKeys(&ctx, &lr, &list).ok());
  ASSERT_EQ(list.keys_size(), 2);
  EXPECT_EQ(list.primary_key_id(), rot.new_key().key_id());
  EXPECT_EQ(list.keys(0).state(), v1::PRIMARY);
  EXPECT_EQ(list.keys(1).state(), v1::ACTIVE);
  // KeyInfo has no field that could carry material.
  EXPECT_EQ(v1::KeyInfo::descriptor()->field_count(), 5);
}

// The subject given at Sign comes back from Verify with the token id; never on a failure.
TEST_F(ServiceTest, SubjectAndTokenIdTranslate) {
  SessionTokensService tokens(engine_.get());
  v1::SignRequest req = SignReq("hi");
  req.set_subject("user-42");
  v1::SignResponse s;
  ASSERT_TRUE(tokens.DoSign(req, &s).ok());
  v1::VerifyRequest vr;
  vr.set_keyring("default");
  vr.set_token(s.token());
  vr.set_audience("web");
  v1::VerifyResponse v;
  ASSERT_TRUE(tokens.DoVerify(vr, &v).ok());
  EXPECT_EQ(v.result(), v1::VerifyResponse::VALID);
  EXPECT_EQ(v.subject(), "user-42");
  EXPECT_EQ(v.token_id(), s.token_id());
  vr.set_audience("api");
  v1::VerifyResponse bad;
  ASSERT_TRUE(tokens.DoVerify(vr, &bad).ok());
  EXPECT_NE(bad.result(), v1::VerifyResponse::VALID);
  EXPECT_EQ(bad.subject(), "");
  EXPECT_EQ(bad.token_id(), "");
  req.set_subject(std::string(129, 's'));
  grpc::Status too_long = tokens.DoSign(req, &s);
  EXPECT_EQ(too_long.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(too_long.error_message().rfind("subject:", 0), 0u) << too_long.error_message();
}

TEST_F(ServiceTest, InvalidTokensAreResultsNotErrors) {
  SessionTokensService tokens(engine_.get());
  v1::VerifyRequest vr;
  vr.set_keyring("default");
  vr.set_token("not a token");
  v1::VerifyResponse v;
  ASSERT_TRUE(tokens.DoVerify(vr, &v).ok());
  EXPECT_EQ(v.result(), v1::VerifyResponse::MALFORMED);
  EXPECT_FALSE(v.has_issued_at());
}

TEST_F(ServiceTest, BadRequestsAreStatusCodesNamingTheField) {
  SessionTokensService tokens(engine_.get());
  struct Case {
    v1::SignRequest req;
    grpc::StatusCode code;
    std::string field;
  };
  v1::SignRequest no_keyring = SignReq("x");
  no_keyring.clear_keyring();
  v1::SignRequest no_ttl = SignReq("x");
  no_ttl.clear_ttl();
  v1::SignRequest frac_ttl = SignReq("x");
  frac_ttl.mutable_ttl()->set_nanos(5);
  v1::SignRequest unknown = SignReq("x");
  unknown.set_keyring("missing");
  std::vector<Case> cases = {
      {no_keyring, grpc::StatusCode::INVALID_ARGUMENT, "keyring"},
      {no_ttl, grpc::StatusCode::INVALID_ARGUMENT, "ttl"},
      {frac_ttl, grpc::StatusCode::INVALID_ARGUMENT, "ttl"},
      {SignReq("x", 0), grpc::StatusCode::INVALID_ARGUMENT, "ttl"},
      {SignReq("x", -5), grpc::StatusCode::INVALID_ARGUMENT, "ttl"},
      {SignReq(std::string(4000, 'p')), grpc::StatusCode::INVALID_ARGUMENT, "payload"},
      {unknown, grpc::StatusCode::NOT_FOUND, "keyring"},
  };
  for (const Case& c : cases) {
    v1::SignResponse resp;
    grpc::Status s = tokens.DoSign(c.req, &resp);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_EQ(s.error_message().rfind(c.field, 0), 0u) << s.error_message();
    EXPECT_TRUE(resp.token().empty());
  }
}

}  // namespace
}  // namespace sessiontoken::service
