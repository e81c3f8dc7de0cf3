// The C++ client against a scripted in-process server on 127.0.0.1: it retries and times out
// as the shared service config (proto/sessiontoken/v1/service_config.json) says, never
// retries an admin change, and the config compiled in is that file.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "client/cpp/client.h"
#include "client/cpp/service_config.h"

namespace sessiontoken::client {
namespace {

namespace pb = google::protobuf;

std::string ReadSharedFile() {
  std::ifstream in(std::string(SESSIONTOKEN_SOURCE_DIR) +
                   "/proto/sessiontoken/v1/service_config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// retryPolicy.maxAttempts of the entry naming service/method in `json` (0: no retryPolicy).
int MaxAttempts(const std::string& json, const std::string& service, const std::string& method) {
  pb::Struct root;
  EXPECT_TRUE(pb::util::JsonStringToMessage(json, &root).ok());
  int found = -1;
  for (const auto& want : {method, std::string()}) {
    for (const pb::Value& e : root.fields().at("methodConfig").list_value().values()) {
      const auto& f = e.struct_value().fields();
      for (const pb::Value& n : f.at("name").list_value().values()) {
        const auto& nf = n.struct_value().fields();
        std::string m = nf.count("method") ? nf.at("method").string_value() : "";
        if (found < 0 && nf.at("service").string_value() == "sessiontoken.v1." + service &&
            m == want) {
          found = f.count("retryPolicy") ? static_cast<int>(f.at("retryPolicy")
                                                                .struct_value()
                                                                .fields()
                                                                .at("maxAttempts")
                                                                .number_value())
                                         : 0;
        }
      }
    }
  }
  return found;
}

// Counts calls per method; answers code_ (UNAVAILABLE) for the first fail_[method] calls,
// then OK (or waits for cancellation when hang_ is set).
class Script {
 public:
  grpc::Status Answer(grpc::ServerContext* ctx, const std::string& method) {
    int n;
    {
      std::lock_guard<std::mutex> l(mu_);
      n = ++calls_[method];
    }
    if (n <= fail_.at(method)) return grpc::Status(code_, "scripted");
    while (hang_ && !ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return grpc::Status::OK;
  }
  int Calls(const std::string& m) {
    std::lock_guard<std::mutex> l(mu_);
    return calls_[m];
  }
  void Reset(int fail, bool hang = false, grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE) {
    std::lock_guard<std::mutex> l(mu_);
    calls_.clear();
    code_ = code;
    for (const char* m :
         {"Sign", "Verify", "Rotate", "PromoteKey", "DisableKey", "EnableKey", "DestroyKey",
          "ImportKey", "CreateKeyring", "SetPolicy", "ListKeys", "ListKeyrings", "GetKeyring"}) {
      fail_[m] = fail;
    }
    hang_ = hang;
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> calls_;
  std::map<std::string, int> fail_;
  std::atomic<bool> hang_{false};
  grpc::StatusCode code_ = grpc::StatusCode::UNAVAILABLE;
};

#define SCRIPTED(Req, Resp, Name)                                         \
  grpc::Status Name(grpc::ServerContext* c, const Req*, Resp*) override { \
    return s_->Answer(c, #Name);                                          \
  }

class Tokens final : public v1::SessionTokens::Service {
 public:
  explicit Tokens(Script* s) : s_(s) {}
  SCRIPTED(v1::SignRequest, v1::SignResponse, Sign)
  SCRIPTED(v1::VerifyRequest, v1::VerifyResponse, Verify)

 private:
  Script* s_;
};

class Admin final : public v1::KeyAdmin::Service {
 public:
  explicit Admin(Script* s) : s_(s) {}
  SCRIPTED(v1::RotateRequest, v1::RotateResponse, Rotate)
  SCRIPTED(v1::KeyRequest, v1::KeyringInfo, PromoteKey)
  SCRIPTED(v1::KeyRequest, v1::KeyringInfo, DisableKey)
  SCRIPTED(v1::KeyRequest, v1::KeyringInfo, EnableKey)
  SCRIPTED(v1::KeyRequest, v1::KeyringInfo, DestroyKey)
  SCRIPTED(v1::ImportKeyRequest, v1::ImportKeyResponse, ImportKey)
  SCRIPTED(v1::CreateKeyringRequest, v1::KeyringInfo, CreateKeyring)
  SCRIPTED(v1::SetPolicyRequest, v1::KeyringInfo, SetPolicy)
  SCRIPTED(v1::ListKeysRequest, v1::ListKeysResponse, ListKeys)
  SCRIPTED(v1::ListKeyringsRequest, v1::ListKeyringsResponse, ListKeyrings)
  SCRIPTED(v1::GetKeyringRequest, v1::KeyringInfo, GetKeyring)

 private:
  Script* s_;
};

class ClientConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    script_.Reset(0);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&tokens_);
    b.RegisterService(&admin_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    script_.Reset(0);
    server_->Shutdown(std::chrono::system_clock::now());
  }
  std::unique_ptr<Client> NewClient(std::string config = "") {
    ClientOptions o;
    o.target = "127.0.0.1:" + std::to_string(port_);
    o.service_config_json = std::move(config);
    absl::StatusOr<std::unique_ptr<Client>> c = Client::New(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  Script script_;
  Tokens tokens_{&script_};
  Admin admin_{&script_};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST(ServiceConfigTest, CompiledInConfigIsTheSharedFile) {
  EXPECT_EQ(SharedServiceConfigJson(), ReadSharedFile());
  absl::StatusOr<ServiceConfig> c = ParseServiceConfig(SharedServiceConfigJson());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->Timeout("sessiontoken.v1.SessionTokens", "Sign"), absl::Seconds(2));
  EXPECT_EQ(c->Timeout("sessiontoken.v1.KeyAdmin", "Rotate"), absl::Seconds(10));
  EXPECT_EQ(c->Timeout("sessiontoken.v1.KeyAdmin", "ListKeys"), absl::Seconds(10));
  EXPECT_EQ(c->Timeout("other.Service", "X"), absl::InfiniteDuration());
  EXPECT_EQ(c->grpc_json.find("timeout"), std::string::npos);
  EXPECT_NE(c->grpc_json.find("retryPolicy"), std::string::npos);
}

TEST(ServiceConfigTest, RejectsMalformedConfigs) {
  EXPECT_EQ(ParseServiceConfig("{").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseServiceConfig("{}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParseServiceConfig(R"({"methodConfig":[{"name":[],"timeout":"soon"}]})").status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientConfigTest, UnavailableIsRetriedOtherAnswersAreNot) {
  std::unique_ptr<Client> c = NewClient();
  script_.Reset(2);
  EXPECT_TRUE(c->Verify(v1::VerifyRequest()).ok());
  EXPECT_EQ(script_.Calls("Verify"), 3);
  script_.Reset(100);
  EXPECT_EQ(c->Sign(v1::SignRequest()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(script_.Calls("Sign"), MaxAttempts(ReadSharedFile(), "SessionTokens", "Sign"));
  EXPECT_GE(script_.Calls("Sign"), 2);
}

// A draining server cancels calls that arrived but had not started (gRPC's Shutdown): token
// calls are retried (nothing was done; another replica answers), admin changes never are.
TEST_F(ClientConfigTest, TokenCallsCancelledByTheServerAreRetriedAdminChangesAreNot) {
  std::unique_ptr<Client> c = NewClient();
  script_.Reset(1, false, grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(c->Sign(v1::SignRequest()).ok());
  EXPECT_EQ(script_.Calls("Sign"), 2);
  EXPECT_TRUE(c->Verify(v1::VerifyRequest()).ok());
  EXPECT_EQ(script_.Calls("Verify"), 2);
  EXPECT_EQ(c->Rotate({}).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(script_.Calls("Rotate"), 1);
  EXPECT_EQ(c->ListKeys({}).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(script_.Calls("ListKeys"), 1);
}

TEST_F(ClientConfigTest, AdminChangesAreNeverRetriedReadsAre) {
  std::unique_ptr<Client> c = NewClient();
  script_.Reset(100);
  const absl::StatusCode kUnavailable = absl::StatusCode::kUnavailable;
  EXPECT_EQ(c->Rotate({}).status().code(), kUnavailable);
  EXPECT_EQ(c->PromoteKey({}).status().code(), kUnavailable);
  EXPECT_EQ(c->DisableKey({}).status().code(), kUnavailable);
  EXPECT_EQ(c->EnableKey({}).status().code(), kUnavailable);
  EXPECT_EQ(c->DestroyKey({}).status().code(), kUnavailable);
  EXPECT_EQ(c->ImportKey({}).status().code(), kUnavailable);
  EXPECT_EQ(c->CreateKeyring({}).status().code(), kUnavailable);
  EXPECT_EQ(c->SetPolicy({}).status().code(), kUnavailable);
  for (const char* m : {"Rotate", "PromoteKey", "DisableKey", "EnableKey", "DestroyKey",
                        "ImportKey", "CreateKeyring", "SetPolicy"}) {
    EXPECT_EQ(script_.Calls(m), 1) << m;
    EXPECT_EQ(MaxAttempts(ReadSharedFile(), "KeyAdmin", m), 0) << m;
  }
  EXPECT_EQ(c->ListKeys({}).status().code(), kUnavailable);
  EXPECT_EQ(c->ListKeyrings({}).status().code(), kUnavailable);
  EXPECT_EQ(c->GetKeyring({}).status().code(), kUnavailable);
  for (const char* m : {"ListKeys", "ListKeyrings", "GetKeyring"}) {
    EXPECT_EQ(script_.Calls(m), MaxAttempts(ReadSharedFile(), "KeyAdmin", m)) << m;
    EXPECT_GE(script_.Calls(m), 2) << m;
  }
}

TEST_F(ClientConfigTest, DeadlinesAndAttemptsFollowTheGivenConfig) {
  std::string config = ReadSharedFile();
  // 2 attempts and a 1 s timeout for the SessionTokens entry (the first one in the file).
  ASSERT_NE(config.find("\"maxAttempts\": 5"), std::string::npos);
  config.replace(config.find("\"maxAttempts\": 5"), 16, "\"maxAttempts\": 2");
  ASSERT_NE(config.find("\"timeout\": \"2s\""), std::string::npos);
  config.replace(config.find("\"timeout\": \"2s\""), 15, "\"timeout\": \"1s\"");
  std::unique_ptr<Client> c = NewClient(config);
  script_.Reset(100);
  EXPECT_EQ(c->Verify({}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(script_.Calls("Verify"), 2);
  script_.Reset(0, /*hang=*/true);
  EXPECT_EQ(c->Verify({}).status().code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace sessiontoken::client
