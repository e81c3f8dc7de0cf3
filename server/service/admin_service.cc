#include "server/service/admin_service.h"

#include "server/service/status.h"

namespace sessiontoken::service {

void ToKeyInfo(const keyring::KeyMetadata& md, v1::KeyInfo* out) {
  out->set_key_id(md.id);
  out->set_algorithm(md.algorithm);
  out->set_state(md.state);
  out->mutable_created_at()->set_seconds(absl::ToUnixSeconds(md.created_at));
  out->mutable_state_changed_at()->set_seconds(absl::ToUnixSeconds(md.state_changed_at));
}

grpc::Status KeyAdminService::Rotate(grpc::ServerContext*, const v1::RotateRequest* req,
                                     v1::RotateResponse* resp) {
  if (req->keyring().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keyring: required");
  }
  absl::StatusOr<engine::RotateOutcome> r = engine_->Rotate(req->keyring());
  if (!r.ok()) return ToGrpc(r.status());
  const keyring::Key* k = r->keyring->Find(r->new_key_id);
  ToKeyInfo(k->metadata(), resp->mutable_new_key());
  resp->set_previous_primary_key_id(r->previous_primary_key_id);
  resp->set_revision(r->keyring->revision());
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::ListKeys(grpc::ServerContext*, const v1::ListKeysRequest* req,
                                       v1::ListKeysResponse* resp) {
  if (req->keyring().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keyring: required");
  }
  absl::StatusOr<std::shared_ptr<const keyring::Keyring>> kr = engine_->Get(req->keyring());
  if (!kr.ok()) return ToGrpc(kr.status());
  resp->set_keyring((*kr)->name());
  for (const auto& k : (*kr)->keys()) ToKeyInfo(k->metadata(), resp->add_keys());
  resp->set_primary_key_id((*kr)->primary().id());
  resp->set_revision((*kr)->revision());
  return grpc::Status::OK;
}

}  // namespace sessiontoken::service
