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

}  // namespace
}  // namespace sessiontoken::app
