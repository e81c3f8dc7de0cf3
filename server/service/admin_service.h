// KeyAdminService: operator RPCs (sync API: admin calls do fsync'ed writes and are rare).
// Translates protos to Engine calls; returns metadata only, never key material.
#ifndef SESSIONTOKEN_SERVER_SERVICE_ADMIN_SERVICE_H_
#define SESSIONTOKEN_SERVER_SERVICE_ADMIN_SERVICE_H_

#include "server/engine/engine.h"
#include "server/engine/replica.h"
#include "server/metrics/key_usage.h"
#include "server/service/auth.h"
#include "sessiontoken/v1/admin.grpc.pb.h"

namespace sessiontoken::service {

// Fills a KeyInfo from key metadata (no material is reachable from KeyMetadata).
void ToKeyInfo(const keyring::KeyMetadata& md, v1::KeyInfo* out);
// Fills a KeyringInfo: policy and key metadata only.
void ToKeyringInfo(const keyring::Keyring& kr, v1::KeyringInfo* out);

class KeyAdminService final : public v1::KeyAdmin::Service {
 public:
  // `auth` (may be null: no access control) and `usage` (may be null: GetKeyUsage answers
  // FAILED_PRECONDITION) must outlive the service.
  explicit KeyAdminService(engine::Engine* engine, const Authorizer* auth = nullptr,
                           const metrics::KeyUsageRecorder* usage = nullptr)
      : engine_(engine), auth_(auth), usage_(usage) {}

  grpc::Status Rotate(grpc::ServerContext* ctx, const v1::RotateRequest* req,
                      v1::RotateResponse* resp) override;
  grpc::Status ListKeys(grpc::ServerContext* ctx, const v1::ListKeysRequest* req,
                        v1::ListKeysResponse* resp) override;
  grpc::Status PromoteKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                          v1::KeyringInfo* resp) override;
  grpc::Status DisableKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                          v1::KeyringInfo* resp) override;
  grpc::Status EnableKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                         v1::KeyringInfo* resp) override;
  grpc::Status DestroyKey(grpc::ServerContext* ctx, const v1::KeyRequest* req,
                          v1::KeyringInfo* resp) override;
  grpc::Status ImportKey(grpc::ServerContext* ctx, const v1::ImportKeyRequest* req,
                         v1::ImportKeyResponse* resp) override;
  grpc::Status CreateKeyring(grpc::ServerContext* ctx, const v1::CreateKeyringRequest* req,
                             v1::KeyringInfo* resp) override;
  grpc::Status ListKeyrings(grpc::ServerContext* ctx, const v1::ListKeyringsRequest* req,
                            v1::ListKeyringsResponse* resp) override;
  grpc::Status GetKeyring(grpc::ServerContext* ctx, const v1::GetKeyringRequest* req,
                          v1::KeyringInfo* resp) override;
  grpc::Status SetPolicy(grpc::ServerContext* ctx, const v1::SetPolicyRequest* req,
                         v1::KeyringInfo* resp) override;
  grpc::Status GetServerStatus(grpc::ServerContext* ctx, const v1::GetServerStatusRequest* req,
                               v1::ServerStatus* resp) override;

  // The replica feeding the engine, on the etcd store (not owned; must outlive the service).
  void set_replica(const engine::Replica* replica) { replica_ = replica; }
  grpc::Status GetKeyUsage(grpc::ServerContext* ctx, const v1::GetKeyUsageRequest* req,
                           v1::GetKeyUsageResponse* resp) override;
  grpc::Status RewrapKeyrings(grpc::ServerContext* ctx, const v1::RewrapKeyringsRequest* req,
                              v1::RewrapKeyringsResponse* resp) override;
  grpc::Status ExportBackup(grpc::ServerContext* ctx, const v1::ExportBackupRequest* req,
                            v1::ExportBackupResponse* resp) override;

 private:
  // Checks the keyring name (request field `field`), identifies the caller and checks the
  // ADMIN role on `keyring`; *audit_name receives the name the audit log records (identity,
  // else peer address).
  grpc::Status Admit(grpc::ServerContext* ctx, absl::string_view keyring, absl::string_view rpc,
                     std::string* audit_name, absl::string_view field = "keyring") const;

  // Identifies the caller and checks the ADMIN role on every keyring ("*"): for operations
  // on the whole store (rewrap, backup).
  grpc::Status AdmitAll(grpc::ServerContext* ctx, absl::string_view rpc,
                        std::string* audit_name) const;

  engine::Engine* engine_;
  const Authorizer* auth_;
  const engine::Replica* replica_ = nullptr;
  const metrics::KeyUsageRecorder* usage_;
};

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_ADMIN_SERVICE_H_
