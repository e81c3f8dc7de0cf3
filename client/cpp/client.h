// Client: a small C++ client of sessiontoken's SessionTokens, KeyAdmin and health services.
// Deadlines and retries per method come from the service config all clients share
// (proto/sessiontoken/v1/service_config.json). Used by the CLI and by C++ frontends.
#ifndef SESSIONTOKEN_CLIENT_CPP_CLIENT_H_
#define SESSIONTOKEN_CLIENT_CPP_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/cpp/service_config.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "sessiontoken/v1/admin.grpc.pb.h"
#include "sessiontoken/v1/tokens.grpc.pb.h"

namespace sessiontoken::client {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";
  // Deadline of each call, retries included. Zero: the method's timeout in the service
  // config (SessionTokens 2 s, KeyAdmin 10 s).
  absl::Duration timeout = absl::ZeroDuration();
  // gRPC service config (JSON) replacing the shared one; empty: SharedServiceConfigJson().
  std::string service_config_json;
  // TLS: set tls_ca_file (PEM roots that sign the server's certificate) to use TLS;
  // tls_cert_file + tls_key_file add a client certificate (mTLS).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;  // overrides the name checked in the server's certificate
  // Sent as "authorization: Bearer <token>" on every call when not empty.
  std::string bearer_token;
  // Largest response accepted (a backup holds every keyring); 0: gRPC's default (4 MiB).
  int max_receive_message_bytes = 0;
};

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> New(const ClientOptions& options);

  absl::StatusOr<v1::SignResponse> Sign(const v1::SignRequest& req);
  absl::StatusOr<v1::VerifyResponse> Verify(const v1::VerifyRequest& req);
  absl::StatusOr<v1::RotateResponse> Rotate(const v1::RotateRequest& req);
  absl::StatusOr<v1::ListKeysResponse> ListKeys(const v1::ListKeysRequest& req);
  absl::StatusOr<v1::GetKeyUsageResponse> GetKeyUsage(const v1::GetKeyUsageRequest& req);
  absl::StatusOr<v1::BatchSignResponse> BatchSign(const v1::BatchSignRequest& req);
  absl::StatusOr<v1::BatchVerifyResponse> BatchVerify(const v1::BatchVerifyRequest& req);
  absl::StatusOr<v1::RevokeResponse> Revoke(const v1::RevokeRequest& req);
  absl::StatusOr<v1::KeyringInfo> PromoteKey(const v1::KeyRequest& req);
  absl::StatusOr<v1::KeyringInfo> DisableKey(const v1::KeyRequest& req);
  absl::StatusOr<v1::KeyringInfo> EnableKey(const v1::KeyRequest& req);
  absl::StatusOr<v1::KeyringInfo> DestroyKey(const v1::KeyRequest& req);
  absl::StatusOr<v1::ImportKeyResponse> ImportKey(const v1::ImportKeyRequest& req);
  absl::StatusOr<v1::KeyringInfo> CreateKeyring(const v1::CreateKeyringRequest& req);
  absl::StatusOr<v1::ListKeyringsResponse> ListKeyrings(const v1::ListKeyringsRequest& req);
  absl::StatusOr<v1::ServerStatus> GetServerStatus();
  absl::StatusOr<v1::KeyringInfo> GetKeyring(const v1::GetKeyringRequest& req);
  absl::StatusOr<v1::KeyringInfo> SetPolicy(const v1::SetPolicyRequest& req);
  absl::StatusOr<v1::RewrapKeyringsResponse> RewrapKeyrings();
  // The backup file's content can exceed gRPC's default 4 MiB receive limit: this call's
  // channel accepts up to ClientOptions::max_receive_message_bytes.
  absl::StatusOr<v1::ExportBackupResponse> ExportBackup();
  // grpc.health.v1 Check of `service` ("" = the whole server).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse> Health(const std::string& service);

 private:
  explicit Client(const ClientOptions& options, ServiceConfig config,
                  std::shared_ptr<grpc::Channel> channel);
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) const;
  // One unary call `name` ("Service.Method") through `stub` with its deadline.
  template <typename Stub, typename Req, typename Resp>
  absl::StatusOr<Resp> Unary(Stub* stub, absl::string_view service, absl::string_view name,
                             grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                             const Req& req) const;

  ClientOptions options_;
  ServiceConfig config_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionTokens::Stub> tokens_;
  std::unique_ptr<v1::KeyAdmin::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace sessiontoken::client

#endif  // SESSIONTOKEN_CLIENT_CPP_CLIENT_H_
