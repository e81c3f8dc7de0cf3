// app::CheckAuthenticationOffLoopback (issue 17 point 1): no unauthenticated network service
// by default. Off loopback the start needs authentication (API tokens, rules or mTLS) or the
// explicit --allow_unauthenticated; loopback stays open for development.
#include "server/app/credentials.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::app {
namespace {

using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;
using ::testing::HasSubstr;

Settings Listening(const char* listen, bool allow_unauthenticated = false) {
  Settings s;
  s.listen = listen;
  s.allow_unauthenticated = allow_unauthenticated;
  return s;
}

TEST(CredentialsTest, OffLoopbackWithoutAuthenticationIsRefused) {
  for (const char* listen : {"0.0.0.0:0", "0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051",
                             "sessiontoken.internal:50051", ":50051"}) {
    const absl::Status st = CheckAuthenticationOffLoopback(Listening(listen), false);
    EXPECT_THAT(st, StatusIs(absl::StatusCode::kFailedPrecondition, "without authentication"))
        << listen;
    for (const char* says : {"--allow_unauthenticated", "--tls_client_ca", "auth.api_tokens"}) {
      EXPECT_THAT(std::string(st.message()), HasSubstr(says)) << listen;
    }
  }
}

TEST(CredentialsTest, LoopbackAuthenticationOrTheExplicitFlagAreAccepted) {
  for (const char* listen : {"127.0.0.1:0", "127.0.0.1:50051", "localhost:50051", "[::1]:50051"}) {
    EXPECT_THAT(CheckAuthenticationOffLoopback(Listening(listen), false), IsOk()) << listen;
  }
  EXPECT_THAT(CheckAuthenticationOffLoopback(Listening("0.0.0.0:50051"), true), IsOk());
  EXPECT_THAT(CheckAuthenticationOffLoopback(Listening("0.0.0.0:50051", true), false), IsOk());
}

// The HTTP gateway speaks plaintext: off loopback only behind TLS termination (--insecure),
// and with authentication or --allow_unauthenticated.
TEST(CredentialsTest, HttpGatewayOffLoopbackNeedsInsecureAndAuthentication) {
  Settings s;
  EXPECT_THAT(CheckHttpGatewayAddress(s, false), IsOk());  // off
  for (const char* listen : {"127.0.0.1:0", "localhost:8080", "[::1]:8080"}) {
    s.http_listen = listen;
    EXPECT_THAT(CheckHttpGatewayAddress(s, false), IsOk()) << listen;
  }
  s.http_listen = "0.0.0.0:8080";
  EXPECT_THAT(CheckHttpGatewayAddress(s, true),
              StatusIs(absl::StatusCode::kFailedPrecondition, "plaintext HTTP"));
  s.insecure = true;
  EXPECT_THAT(CheckHttpGatewayAddress(s, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, "without authentication"));
  EXPECT_THAT(CheckHttpGatewayAddress(s, true), IsOk());
  s.allow_unauthenticated = true;
  EXPECT_THAT(CheckHttpGatewayAddress(s, false), IsOk());
}

}  // namespace
}  // namespace sessiontoken::app
