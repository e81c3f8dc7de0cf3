#include "client/cpp/client.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::client {

namespace {

constexpr absl::string_view kTokens = "sessiontoken.v1.SessionTokens";
constexpr absl::string_view kAdmin = "sessiontoken.v1.KeyAdmin";

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::New(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("server: required");
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadPem(options.tls_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError("tls_cert and tls_key must be given together");
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file);
      absl::StatusOr<std::string> key = ReadPem(options.tls_key_file);
      if (!cert.ok()) return cert.status();
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  } else if (!options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError("tls_cert needs tls_ca (the server's CA)");
  }
  absl::StatusOr<ServiceConfig> config = ParseServiceConfig(
      options.service_config_json.empty() ? SharedServiceConfigJson()
                                          : absl::string_view(options.service_config_json));
  if (!config.ok()) return config.status();
  args.SetServiceConfigJSON(config->grpc_json);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
  if (options.max_receive_message_bytes != 0) {
    args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  }
  auto channel = grpc::CreateCustomChannel(options.target, creds, args);
  if (channel == nullptr) return absl::InternalError("cannot create channel");
  return std::unique_ptr<Client>(new Client(options, *std::move(config), std::move(channel)));
}

Client::Client(const ClientOptions& options, ServiceConfig config,
               std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      config_(std::move(config)),
      channel_(std::move(channel)),
      tokens_(v1::SessionTokens::NewStub(channel_)),
      admin_(v1::KeyAdmin::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Client::NewContext(absl::Duration timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (timeout != absl::InfiniteDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  if (!options_.bearer_token.empty()) {
    ctx->AddMetadata("authorization", "Bearer " + options_.bearer_token);
  }
  return ctx;
}

template <typename Stub, typename Req, typename Resp>
absl::StatusOr<Resp> Client::Unary(Stub* stub, absl::string_view service, absl::string_view name,
                                   grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&,
                                                                Resp*),
                                   const Req& req) const {
  std::unique_ptr<grpc::ClientContext> ctx = NewContext(
      options_.timeout > absl::ZeroDuration() ? options_.timeout : config_.Timeout(service, name));
  Resp resp;
  grpc::Status s = (stub->*method)(ctx.get(), req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  return resp;
}

absl::StatusOr<v1::SignResponse> Client::Sign(const v1::SignRequest& req) {
  return Unary(tokens_.get(), kTokens, "Sign", &v1::SessionTokens::Stub::Sign, req);
}
absl::StatusOr<v1::VerifyResponse> Client::Verify(const v1::VerifyRequest& req) {
  return Unary(tokens_.get(), kTokens, "Verify", &v1::SessionTokens::Stub::Verify, req);
}
absl::StatusOr<v1::BatchSignResponse> Client::BatchSign(const v1::BatchSignRequest& req) {
  return Unary(tokens_.get(), kTokens, "BatchSign", &v1::SessionTokens::Stub::BatchSign, req);
}
absl::StatusOr<v1::BatchVerifyResponse> Client::BatchVerify(const v1::BatchVerifyRequest& req) {
  return Unary(tokens_.get(), kTokens, "BatchVerify", &v1::SessionTokens::Stub::BatchVerify, req);
}
absl::StatusOr<v1::RevokeResponse> Client::Revoke(const v1::RevokeRequest& req) {
  return Unary(tokens_.get(), kTokens, "Revoke", &v1::SessionTokens::Stub::Revoke, req);
}
absl::StatusOr<v1::RotateResponse> Client::Rotate(const v1::RotateRequest& req) {
  return Unary(admin_.get(), kAdmin, "Rotate", &v1::KeyAdmin::Stub::Rotate, req);
}
absl::StatusOr<v1::GetKeyUsageResponse> Client::GetKeyUsage(const v1::GetKeyUsageRequest& req) {
  return Unary(admin_.get(), kAdmin, "GetKeyUsage", &v1::KeyAdmin::Stub::GetKeyUsage, req);
}

absl::StatusOr<v1::ListKeysResponse> Client::ListKeys(const v1::ListKeysRequest& req) {
  return Unary(admin_.get(), kAdmin, "ListKeys", &v1::KeyAdmin::Stub::ListKeys, req);
}
absl::StatusOr<v1::KeyringInfo> Client::PromoteKey(const v1::KeyRequest& req) {
  return Unary(admin_.get(), kAdmin, "PromoteKey", &v1::KeyAdmin::Stub::PromoteKey, req);
}
absl::StatusOr<v1::KeyringInfo> Client::DisableKey(const v1::KeyRequest& req) {
  return Unary(admin_.get(), kAdmin, "DisableKey", &v1::KeyAdmin::Stub::DisableKey, req);
}
absl::StatusOr<v1::KeyringInfo> Client::EnableKey(const v1::KeyRequest& req) {
  return Unary(admin_.get(), kAdmin, "EnableKey", &v1::KeyAdmin::Stub::EnableKey, req);
}
absl::StatusOr<v1::KeyringInfo> Client::DestroyKey(const v1::KeyRequest& req) {
  return Unary(admin_.get(), kAdmin, "DestroyKey", &v1::KeyAdmin::Stub::DestroyKey, req);
}
absl::StatusOr<v1::ImportKeyResponse> Client::ImportKey(const v1::ImportKeyRequest& req) {
  return Unary(admin_.get(), kAdmin, "ImportKey", &v1::KeyAdmin::Stub::ImportKey, req);
}
absl::StatusOr<v1::KeyringInfo> Client::CreateKeyring(const v1::CreateKeyringRequest& req) {
  return Unary(admin_.get(), kAdmin, "CreateKeyring", &v1::KeyAdmin::Stub::CreateKeyring, req);
}
absl::StatusOr<v1::ServerStatus> Client::GetServerStatus() {
  return Unary(admin_.get(), kAdmin, "GetServerStatus", &v1::KeyAdmin::Stub::GetServerStatus,
               v1::GetServerStatusRequest());
}

absl::StatusOr<v1::ListKeyringsResponse> Client::ListKeyrings(const v1::ListKeyringsRequest& req) {
  return Unary(admin_.get(), kAdmin, "ListKeyrings", &v1::KeyAdmin::Stub::ListKeyrings, req);
}
absl::StatusOr<v1::KeyringInfo> Client::GetKeyring(const v1::GetKeyringRequest& req) {
  return Unary(admin_.get(), kAdmin, "GetKeyring", &v1::KeyAdmin::Stub::GetKeyring, req);
}
absl::StatusOr<v1::KeyringInfo> Client::SetPolicy(const v1::SetPolicyRequest& req) {
  return Unary(admin_.get(), kAdmin, "SetPolicy", &v1::KeyAdmin::Stub::SetPolicy, req);
}

absl::StatusOr<v1::RewrapKeyringsResponse> Client::RewrapKeyrings() {
  return Unary(admin_.get(), kAdmin, "RewrapKeyrings", &v1::KeyAdmin::Stub::RewrapKeyrings,
               v1::RewrapKeyringsRequest());
}
absl::StatusOr<v1::ExportBackupResponse> Client::ExportBackup() {
  return Unary(admin_.get(), kAdmin, "ExportBackup", &v1::KeyAdmin::Stub::ExportBackup,
               v1::ExportBackupRequest());
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse> Client::Health(const std::string& service) {
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  return Unary(health_.get(), "grpc.health.v1.Health", "Check",
               &grpc::health::v1::Health::Stub::Check, req);
}

}  // namespace sessiontoken::client
