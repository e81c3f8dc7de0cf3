// app::CheckAuthenticationOffLoopback (issue 17 point 1): no unauthenticated network service
// by default. Off loopback the start needs authentication (API tokens, rules or mTLS) or the
// explicit --allow_unauthenticated; loopback stays open for development.
#include "server/app/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

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
  // With the gRPC port's certificate the gateway serves HTTPS: no --insecure needed off
  // loopback, but authentication still is.
  s.insecure = false;
  s.allow_unauthenticated = false;
  s.tls.cert_file = "cert.pem";
  s.tls.key_file = "key.pem";
  EXPECT_THAT(CheckHttpGatewayAddress(s, true), IsOk());
  EXPECT_THAT(CheckHttpGatewayAddress(s, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, "without authentication"));
}

void WriteKekFile(const std::string& path, const std::string& hex, mode_t mode = 0600) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, hex.data(), hex.size()), static_cast<ssize_t>(hex.size()));
  ::close(fd);
  ::chmod(path.c_str(), mode);
}

// Issue 14: the previous KEKs open records; the current one seals; a KEK file others may
// read is refused naming the setting; the same KEK twice is refused.
TEST(CredentialsTest, OpenSealerReadsThePreviousKekFiles) {
  const std::string dir = testing::MakeTempDir();
  Settings s;
  s.kek_file = dir + "/kek";
  WriteKekFile(s.kek_file, std::string(64, 'a'));
  WriteKekFile(dir + "/old", std::string(64, 'b'));
  s.previous_kek_files = {dir + "/old"};
  absl::StatusOr<std::unique_ptr<store::Sealer>> sealer = OpenSealer(s);
  ASSERT_THAT(sealer, IsOk());
  EXPECT_EQ((*sealer)->previous_fingerprints().size(), 1u);
  EXPECT_NE((*sealer)->previous_fingerprints()[0], (*sealer)->fingerprint());
  WriteKekFile(dir + "/old", std::string(64, 'b'), 0644);
  EXPECT_THAT(OpenSealer(s), StatusIs(absl::StatusCode::kFailedPrecondition, "previous_kek_files"));
  s.previous_kek_files = {s.kek_file};
  EXPECT_THAT(OpenSealer(s), StatusIs(absl::StatusCode::kInvalidArgument, "given twice"));
}

}  // namespace
}  // namespace sessiontoken::app
