// KeyAdminService: operator RPCs (sync API: admin calls do fsync'ed writes and are rare).
// Translates protos to Engine calls; returns metadata only, never key material.
#ifndef SESSIONTOKEN_SERVER_SERVICE_ADMIN_SERVICE_H_
#define SESSIONTOKEN_SERVER_SERVICE_ADMIN_SERVICE_H_

#include "server/engine/engine.h"
#include "sessiontoken/v1/admin.grpc.pb.h"

namespace sessiontoken::service {

// Fills a KeyInfo from key metadata (no material is reachable from KeyMetadata).
void ToKeyInfo(const keyring::KeyMetadata& md, v1::KeyInfo* out);

class KeyAdminService final : public v1::KeyAdmin::Service {
 public:
  explicit KeyAdminService(engine::Engine* engine) : engine_(engine) {}

  grpc::Status Rotate(grpc::ServerContext* ctx, const v1::RotateRequest* req,
                      v1::RotateResponse* resp) override;
  grpc::Status ListKeys(grpc::ServerContext* ctx, const v1::ListKeysRequest* req,
                        v1::ListKeysResponse* resp) override;

 private:
  engine::Engine* engine_;
};

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_ADMIN_SERVICE_H_
