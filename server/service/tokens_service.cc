#include "server/service/tokens_service.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "server/service/status.h"

namespace sessiontoken::service {
namespace {

v1::VerifyResponse::Result ToProto(keyring::VerifyStatus s) {
  using R = v1::VerifyResponse;
  switch (s) {
    case keyring::VerifyStatus::kValid: return R::VALID;
    case keyring::VerifyStatus::kMalformed: return R::MALFORMED;
    case keyring::VerifyStatus::kUnknownKey: return R::UNKNOWN_KEY;
    case keyring::VerifyStatus::kBadSignature: return R::BAD_SIGNATURE;
    case keyring::VerifyStatus::kExpired: return R::EXPIRED;
    case keyring::VerifyStatus::kNotYetValid: return R::NOT_YET_VALID;
    case keyring::VerifyStatus::kKeyDisabled: return R::KEY_DISABLED;
    case keyring::VerifyStatus::kWrongAudience: return R::WRONG_AUDIENCE;
  }
  return R::RESULT_UNSPECIFIED;
}

}  // namespace

grpc::Status SessionTokensService::DoSign(const v1::SignRequest& req, v1::SignResponse* resp,
                                          const Caller& caller,
                                          const engine::Engine::View* view) const {
  if (req.keyring().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keyring: required");
  }
  if (grpc::Status s = Authorize(caller, v1::AuthConfig::SIGN, req.keyring(), "Sign");
      !s.ok()) {
    return s;
  }
  if (!req.has_ttl()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ttl: required");
  if (req.ttl().nanos() != 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ttl: must be whole seconds");
  }
  absl::StatusOr<keyring::SignResult> r = engine_->Sign(
      req.keyring(), req.payload(), req.audience(), absl::Seconds(req.ttl().seconds()), view);
  if (!r.ok()) return ToGrpc(r.status());
  resp->set_token(std::move(r->token));
  resp->set_key_id(r->key_id);
  resp->mutable_issued_at()->set_seconds(r->issued_at);
  resp->mutable_expires_at()->set_seconds(r->expires_at);
  return grpc::Status::OK;
}

grpc::Status SessionTokensService::DoVerify(const v1::VerifyRequest& req,
                                            v1::VerifyResponse* resp,
                                            const Caller& caller,
                                            const engine::Engine::View* view) const {
  if (req.keyring().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keyring: required");
  }
  if (grpc::Status s = Authorize(caller, v1::AuthConfig::VERIFY, req.keyring(), "Verify");
      !s.ok()) {
    return s;
  }
  constexpr int64_t kMaxAgeLimit = int64_t{10} * 366 * 24 * 3600;  // as Sign's TTL
  if (req.has_max_age() && (req.max_age().seconds() <= 0 || req.max_age().nanos() != 0 ||
                            req.max_age().seconds() > kMaxAgeLimit)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "max_age: must be a whole number of seconds between 1s and 10 years");
  }
  std::optional<absl::Duration> max_age;
  if (req.has_max_age()) max_age = absl::Seconds(req.max_age().seconds());
  absl::StatusOr<keyring::VerifyResult> r =
      engine_->Verify(req.keyring(), req.token(), req.audience(), max_age, view);
  if (!r.ok()) return ToGrpc(r.status());
  resp->set_result(ToProto(r->status));
  resp->set_key_id(r->key_id);
  if (r->issued_at != 0 || r->expires_at != 0) {
    resp->mutable_issued_at()->set_seconds(r->issued_at);
    resp->mutable_expires_at()->set_seconds(r->expires_at);
  }
  resp->set_payload(std::move(r->payload));
  resp->set_refresh_recommended(r->refresh_recommended);
  return grpc::Status::OK;
}

grpc::Status SessionTokensService::DoBatchSign(const v1::BatchSignRequest& req,
                                               v1::BatchSignResponse* resp,
                                               const Caller& caller) const {
  if (req.items_size() > max_batch_items_) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("items: ", req.items_size(), " exceeds the batch limit of ",
                                     max_batch_items_));
  }
  if (auth_ != nullptr && auth_->enabled() && !caller.authenticated()) {
    return Authorize(caller, v1::AuthConfig::SIGN, "", "BatchSign");
  }
  resp->mutable_items()->Reserve(req.items_size());
  const engine::Engine::View view = engine_->CurrentView();  // one snapshot for the batch
  for (const v1::SignRequest& item : req.items()) {
    v1::BatchSignResponse::Item* out = resp->add_items();
    grpc::Status s = DoSign(item, out->mutable_response(), caller, &view);
    if (!s.ok()) {
      out->clear_response();
      out->set_code(s.error_code());
      out->set_message(s.error_message());
    }
  }
  return grpc::Status::OK;
}

grpc::Status SessionTokensService::DoBatchVerify(const v1::BatchVerifyRequest& req,
                                                 v1::BatchVerifyResponse* resp,
                                                 const Caller& caller) const {
  if (req.items_size() > max_batch_items_) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("items: ", req.items_size(), " exceeds the batch limit of ",
                                     max_batch_items_));
  }
  if (auth_ != nullptr && auth_->enabled() && !caller.authenticated()) {
    return Authorize(caller, v1::AuthConfig::VERIFY, "", "BatchVerify");
  }
  resp->mutable_items()->Reserve(req.items_size());
  const engine::Engine::View view = engine_->CurrentView();  // one snapshot for the batch
  for (const v1::VerifyRequest& item : req.items()) {
    v1::BatchVerifyResponse::Item* out = resp->add_items();
    grpc::Status s = DoVerify(item, out->mutable_response(), caller, &view);
    if (!s.ok()) {
      out->clear_response();
      out->set_code(s.error_code());
      out->set_message(s.error_message());
    }
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* SessionTokensService::BatchSign(grpc::CallbackServerContext* ctx,
                                                          const v1::BatchSignRequest* req,
                                                          v1::BatchSignResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(DoBatchSign(*req, resp, Identify(*ctx)));
  return reactor;
}

grpc::ServerUnaryReactor* SessionTokensService::BatchVerify(grpc::CallbackServerContext* ctx,
                                                            const v1::BatchVerifyRequest* req,
                                                            v1::BatchVerifyResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(DoBatchVerify(*req, resp, Identify(*ctx)));
  return reactor;
}

grpc::ServerUnaryReactor* SessionTokensService::Sign(grpc::CallbackServerContext* ctx,
                                                     const v1::SignRequest* req,
                                                     v1::SignResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(DoSign(*req, resp, Identify(*ctx)));
  return reactor;
}

grpc::ServerUnaryReactor* SessionTokensService::Verify(grpc::CallbackServerContext* ctx,
                                                       const v1::VerifyRequest* req,
                                                       v1::VerifyResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(DoVerify(*req, resp, Identify(*ctx)));
  return reactor;
}

}  // namespace sessiontoken::service
