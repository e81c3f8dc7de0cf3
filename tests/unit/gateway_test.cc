// gateway::JsonGateway without a network: routes onto the SessionTokensService calls,
// protobuf's JSON mapping both ways, bearer and client-certificate identities, per-keyring
// authorization, the keyring of the URL, JSON errors with the gRPC code name and HTTP
// status, health.
// (tests/integration/http_gateway_test.py covers the same over real HTTP.)
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/hmac.h"
#include "server/crypto/random.h"
#include "server/gateway/json_gateway.h"
#include "server/store/sealer.h"
#include "tests/testing/memory_store.h"

namespace sessiontoken::gateway {
namespace {

using ::testing::HasSubstr;

std::string Sha256Hex(absl::string_view s) {
  uint8_t d[32];
  crypto::Sha256(s, d);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(d), 32));
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::AuthConfig cfg;
    auto* t = cfg.add_api_tokens();
    t->set_identity("web");
    t->set_sha256(Sha256Hex("tok-web"));
    auto* rule = cfg.add_rules();
    rule->set_identity("token:web");
    rule->add_keyrings("shop");
    rule->add_roles(v1::AuthConfig::SIGN);
    rule->add_roles(v1::AuthConfig::VERIFY);
    auto* cert_rule = cfg.add_rules();
    cert_rule->set_identity("uri:spiffe://t/shop");
    cert_rule->add_keyrings("shop");
    cert_rule->add_roles(v1::AuthConfig::SIGN);
    auto policy = service::AccessPolicy::New(cfg, false);
    ASSERT_TRUE(policy.ok()) << policy.status();
    auto engine = engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                      *store::Sealer::New(crypto::RandomSecret(32)),
                                      &keyring::Clock::Real(), {});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    for (const char* k : {"shop", "blog"}) ASSERT_TRUE(engine_->CreateKeyring("t", k, {}).ok());
    auth_ = std::make_unique<service::Authorizer>(*std::move(policy), nullptr);
    tokens_ = std::make_unique<service::SessionTokensService>(engine_.get(), 10, auth_.get());
    gateway_ = std::make_unique<JsonGateway>(tokens_.get(), auth_.get());
  }

  HttpResponse Post(absl::string_view path, absl::string_view body,
                    std::optional<absl::string_view> auth = "Bearer tok-web",
                    std::string certificate_identity = "") {
    HttpRequest r;
    r.certificate_identity = std::move(certificate_identity);
    r.method = "POST";
    r.path = path;
    r.body = body;
    r.authorization = auth;
    r.content_type = "application/json; charset=utf-8";
    r.peer = "http:127.0.0.1:1";
    return gateway_->Handle(r);
  }

  // The JSON error's code, after checking the body has exactly code and message.
  static std::string ErrorCode(const HttpResponse& r) {
    google::protobuf::Struct s;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &s).ok()) << r.body;
    EXPECT_EQ(s.fields_size(), 2) << r.body;
    EXPECT_TRUE(s.fields().contains("message")) << r.body;
    return s.fields().contains("code") ? s.fields().at("code").string_value() : "";
  }

  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<service::Authorizer> auth_;
  std::unique_ptr<service::SessionTokensService> tokens_;
  std::unique_ptr<JsonGateway> gateway_;
};

TEST_F(GatewayTest, SignThenVerifyInProtobufsJsonMapping) {
  HttpResponse signed_r =
      Post("/v1/keyrings/shop:sign",
           R"({"payload": "aGVsbG8=", "ttl": "60s", "audience": "a", "subject": "u-7"})");
  ASSERT_EQ(signed_r.status, 200) << signed_r.body;
  v1::SignResponse sign;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(signed_r.body, &sign).ok());
  EXPECT_NE(sign.key_id(), 0u);
  EXPECT_THAT(signed_r.body, HasSubstr("\"keyId\""));
  HttpResponse v = Post("/v1/keyrings/shop:verify",
                        absl::StrCat(R"({"token": ")", sign.token(), R"(", "audience": "a"})"));
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_THAT(v.body, HasSubstr(R"("result":"VALID")"));
  EXPECT_THAT(v.body, HasSubstr(R"("payload":"aGVsbG8=")"));
  EXPECT_THAT(v.body, HasSubstr(R"("refreshRecommended":false)"));
  EXPECT_EQ(sign.token_id().size(), 22u);
  EXPECT_THAT(signed_r.body, HasSubstr(absl::StrCat(R"("tokenId":")", sign.token_id(), "\"")));
  EXPECT_THAT(v.body, HasSubstr(absl::StrCat(R"("tokenId":")", sign.token_id(), "\"")));
  EXPECT_THAT(v.body, HasSubstr(R"("subject":"u-7")"));
}

TEST_F(GatewayTest, AuthenticationAndAuthorization) {
  const std::string body = R"({"payload": "", "ttl": "60s"})";
  HttpResponse r = Post("/v1/keyrings/shop:sign", body, std::nullopt);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(ErrorCode(r), "UNAUTHENTICATED");
  r = Post("/v1/keyrings/shop:sign", body, "Bearer tok-wrong");
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, HasSubstr("not recognised"));
  r = Post("/v1/keyrings/shop:sign", "{bad json", "Basic x");  // 401 before the body
  EXPECT_EQ(r.status, 401);
  r = Post("/v1/keyrings/blog:sign", body);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorCode(r), "PERMISSION_DENIED");
}

TEST_F(GatewayTest, ClientCertificateIdentityUnlessABearerTokenIsPresented) {
  const std::string body = R"({"payload": "", "ttl": "60s"})";
  HttpResponse r = Post("/v1/keyrings/shop:sign", body, std::nullopt, "uri:spiffe://t/shop");
  EXPECT_EQ(r.status, 200) << r.body;
  r = Post("/v1/keyrings/blog:sign", body, std::nullopt, "uri:spiffe://t/shop");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("uri:spiffe://t/shop may not"));
  // The kind is part of the identity: a DNS SAN of the same text has no rule.
  EXPECT_EQ(Post("/v1/keyrings/shop:sign", body, std::nullopt, "dns:spiffe://t/shop").status, 403);
  r = Post("/v1/keyrings/shop:verify", R"({"token": "x"})", std::nullopt, "uri:spiffe://t/shop");
  EXPECT_EQ(r.status, 403);  // SIGN only
  // A presented token is the identity (as on the gRPC port), even a wrong one.
  EXPECT_EQ(Post("/v1/keyrings/shop:sign", body, "Bearer tok-wrong", "uri:spiffe://t/shop").status,
            401);
  EXPECT_EQ(
      Post("/v1/keyrings/shop:verify", R"({"token": "x"})", "Bearer tok-web", "uri:spiffe://t/shop")
          .status,
      200);
}

TEST_F(GatewayTest, BadBodiesAndTheUrlsKeyring) {
  for (const char* body :
       {"", "{", "[]", R"({"ttl": 60})", R"({"ttl": "60s", "x": 1})",
        R"({"payload": 5, "ttl": "60s"})", R"({"keyring": "blog", "ttl": "60s"})", R"({})"}) {
    HttpResponse r = Post("/v1/keyrings/shop:sign", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_EQ(ErrorCode(r), "INVALID_ARGUMENT") << body;
  }
  HttpResponse r = Post("/v1/keyrings/shop:batchSign",
                        R"({"items": [{"ttl": "60s"}, {"keyring": "blog", "ttl": "60s"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("URL names"));
}

TEST_F(GatewayTest, RoutesMethodsAndContentType) {
  EXPECT_EQ(Post("/v1/keyrings/shop:rotate", "{}").status, 404);
  EXPECT_EQ(Post("/v1/keyrings/shop", "{}").status, 404);
  EXPECT_EQ(Post("/v2/keyrings/shop:sign", "{}").status, 404);
  HttpRequest get;
  get.method = "GET";
  get.path = "/v1/keyrings/shop:sign";
  EXPECT_EQ(gateway_->Handle(get).status, 405);
  HttpRequest text;
  text.method = "POST";
  text.path = "/v1/keyrings/shop:sign";
  text.body = R"({"ttl": "60s"})";
  text.authorization = "Bearer tok-web";
  text.content_type = "text/plain";
  EXPECT_EQ(gateway_->Handle(text).status, 415);
  HttpResponse unknown = Post("/v1/keyrings/shop\xff:sign", "{}");
  EXPECT_EQ(unknown.status, 400);  // the name is checked; the message stays valid UTF-8
  EXPECT_EQ(ErrorCode(unknown), "INVALID_ARGUMENT");
}

TEST_F(GatewayTest, HealthTurnsNotServingWhenDraining) {
  HttpRequest h;
  h.method = "GET";
  h.path = "/healthz";
  HttpResponse r = gateway_->Handle(h);
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("SERVING"));
  gateway_->SetServing(false);
  r = gateway_->Handle(h);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("NOT_SERVING"));
}

TEST(HttpStatusTest, UsualStatusPerCode) {
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::INTERNAL), 500);
  HttpResponse e = ErrorResponse(grpc::Status(grpc::StatusCode::NOT_FOUND, "keyring \"x\""));
  EXPECT_EQ(e.status, 404);
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(e.body, &parsed).ok()) << e.body;
  EXPECT_EQ(parsed.fields().at("code").string_value(), "NOT_FOUND");
  EXPECT_EQ(parsed.fields().at("message").string_value(), "keyring \"x\"");
}

}  // namespace
}  // namespace sessiontoken::gateway
