// Proves that BoringSSL and the system OpenSSL (used by gRPC for TLS) coexist in one
// process: our HMAC is BoringSSL's, statically linked and not exported, and a TLS gRPC
// call (OpenSSL) works in the same process, carrying tokens our BoringSSL code produced.
#include <dlfcn.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/crypto/hmac.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/service/tokens_service.h"
#include "tests/testing/crypto_probe.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/unit/test_util.h"

namespace sessiontoken {
namespace {

TEST(IsolationTest, HmacComesFromStaticBoringSsl) {
  EXPECT_TRUE(absl::StrContains(testing::CryptoLibraryVersion(), "BoringSSL"))
      << testing::CryptoLibraryVersion();
  Dl_info info;
  ASSERT_NE(dladdr(testing::Sha256UpdateAddress(), &info), 0);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  // The HMAC we call lives in this executable, not in libcrypto.so.3.
  char resolved[PATH_MAX];
  ASSERT_NE(realpath(info.dli_fname, resolved), nullptr);
  EXPECT_EQ(std::string(resolved), std::string(exe));
  EXPECT_FALSE(absl::StrContains(info.dli_fname, "libcrypto"));
  // And the process-wide dynamic symbol of that name (if any) is OpenSSL's, not ours.
  void* dyn = dlsym(RTLD_DEFAULT, "SHA256_Update");
  if (dyn != nullptr) {
    EXPECT_NE(dyn, testing::Sha256UpdateAddress());
    Dl_info dinfo;
    ASSERT_NE(dladdr(dyn, &dinfo), 0);
    EXPECT_TRUE(absl::StrContains(dinfo.dli_fname, "libcrypto.so.3")) << dinfo.dli_fname;
  }
}

TEST(IsolationTest, TlsGrpcCallWorksInTheSameProcess) {
  const std::string dir = testing::MakeTempDir();
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      dir + "/key.pem -out " + dir + "/cert.pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl CLI needed to make a test certificate";
  const std::string cert = testing::ReadFile(dir + "/cert.pem");
  const std::string key = testing::ReadFile(dir + "/key.pem");
  ASSERT_FALSE(cert.empty());

  keyring::FakeClock clock(absl::FromUnixSeconds(1800000000));
  auto engine = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                     *store::Sealer::New(crypto::RandomSecret(32)), &clock, {});
  service::SessionTokensService tokens(engine.get());
  grpc::SslServerCredentialsOptions sopts;
  sopts.pem_key_cert_pairs.push_back({key, cert});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(sopts), &port);
  builder.RegisterService(&tokens);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  grpc::SslCredentialsOptions copts;
  copts.pem_root_certs = cert;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                           grpc::SslCredentials(copts), args);
  auto stub = v1::SessionTokens::NewStub(channel);
  v1::SignRequest req;
  req.set_keyring("default");
  req.set_payload("over tls");
  req.mutable_ttl()->set_seconds(60);
  v1::SignResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = stub->Sign(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The token was made by BoringSSL's HMAC and verifies locally.
  auto v = engine->Verify("default", resp.token(), "");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->status, format::VerifyStatus::kValid);
  EXPECT_EQ(v->payload, "over tls");

  // A plaintext client must not get through the TLS port.
  auto insecure = v1::SessionTokens::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_FALSE(insecure->Sign(&ctx2, req, &resp).ok());
  server->Shutdown();
}

}  // namespace
}  // namespace sessiontoken
