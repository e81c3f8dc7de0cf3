// gateway::TlsCredentials (GnuTLS) refuses TLS files it cannot use, saying which: a missing
// file, a certificate and key that are not PEM. (Working
// certificates, reload and client identities: tests/integration/http_gateway_tls_test.py,
// with certificates made at test time.) GnuTLS headers only in this file.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/gateway/tls_credentials.h"

namespace sessiontoken::gateway {
namespace {

using ::testing::HasSubstr;

class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gateway_tls_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const char* f : {"/cert.pem", "/key.pem"}) unlink((dir_ + f).c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const char* name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(TlsCredentialsTest, MissingFileIsNamed) {
  TlsFiles f{dir_ + "/absent.pem", dir_ + "/absent.key", "", absl::Seconds(1)};
  absl::StatusOr<std::unique_ptr<TlsCredentials>> c = TlsCredentials::Load(f, nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("absent.pem"));
}

TEST_F(TlsCredentialsTest, NotPemIsRefusedNamingTheFiles) {
  TlsFiles f{Write("cert.pem", "not a certificate\n"), Write("key.pem", "not a key\n"), "",
             absl::Seconds(1)};
  absl::StatusOr<std::unique_ptr<TlsCredentials>> c = TlsCredentials::Load(f, nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("cert.pem"));
  EXPECT_THAT(c.status().message(), HasSubstr("key.pem"));
}

}  // namespace
}  // namespace sessiontoken::gateway
