#include "server/service/tokens_service.h"

#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "server/service/status.h"

namespace sessiontoken::service {
namespace {

v1::VerifyResponse::Result ToProto(format::VerifyStatus s) {
  using R = v1::VerifyResponse;
  switch (s) {
    case format::VerifyStatus::kValid:
      return R::VALID;
    case format::VerifyStatus::kMalformed:
      return R::MALFORMED;
    case format::VerifyStatus::kUnknownKey:
      return R::UNKNOWN_KEY;
    case format::VerifyStatus::kBadSignature:
      return R::BAD_SIGNATURE;
    case format::VerifyStatus::kExpired:
      return R::EXPIRED;
    case format::VerifyStatus::kNotYetValid:
      return R::NOT_YET_VALID;
    case format::VerifyStatus::kKeyDisabled:
      return R::KEY_DISABLED;
    case format::VerifyStatus::kRevoked:
      return R::REVOKED;
    case format::VerifyStatus::kWrongAudience:
      return R::WRONG_AUDIENCE;
  }
  return R::RESULT_UNSPECIFIED;
}

// Duration fields are checked by the engine (limits.h), nanos included.
absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

grpc::Status SessionTokensService::DoSign(const v1::SignRequest& req, v1::SignResponse* resp,
                                          const Caller& caller,
                                          const engine::Engine::View* view) const {
  if (req.keyring().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keyring: required");
  }
  // Before authorization: a denial quotes the name (in the reply and the audit log).
  if (absl::Status s = keyring::ValidateKeyringName(req.keyring()); !s.ok()) return ToGrpc(s);
  if (grpc::Status s = Authorize(caller, v1::AuthConfig::SIGN, req.keyring(), "Sign"); !s.ok()) {
    return s;
  }
  if (!req.has_ttl()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ttl: required");
  absl::StatusOr<format::SignResult> r = engine_->Sign(req.keyring(), req.payload(), req.audience(),
                                                       FromProto(req.ttl()), view, req.subject());
  if (!r.ok()) return ToGrpc(r.status());
  resp->set_token(std::move(r->token));
  resp->set_key_id(r->key_id);
  resp->mutable_issued_at()->set_seconds(r->issued_at);
  resp->mutable_expires_at()->set_seconds(r->expires_at);
  resp->set_token_id(std::move(r->token_id));
  return grpc::Status::OK;
}

grpc::Status SessionTokensService::DoVerify(const v1::VerifyRequest& req, v1::VerifyResponse* resp,
                                            const Caller& caller,
                                            const engine::Engine::View* view) const {
  if (req.keyring().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keyring: required");
  }
  // Before authorization: a denial quotes the name (in the reply and the audit log).
  if (absl::Status s = keyring::ValidateKeyringName(req.keyring()); !s.ok()) return ToGrpc(s);
  if (grpc::Status s = Authorize(caller, v1::AuthConfig::VERIFY, req.keyring(), "Verify");
      !s.ok()) {
    return s;
  }
  std::optional<absl::Duration> max_age;
  if (req.has_max_age()) max_age = FromProto(req.max_age());
  absl::StatusOr<format::VerifyResult> r =
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
  if (r->status == format::VerifyStatus::kValid) {
    resp->set_subject(std::move(r->subject));
    resp->set_token_id(std::move(r->token_id));
  }
  return grpc::Status::OK;
}

grpc::Status SessionTokensService::DoRevoke(const v1::RevokeRequest& req, v1::RevokeResponse* resp,
                                            const Caller& caller, absl::Time deadline) const {
  if (req.keyring().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keyring: required");
  }
  if (absl::Status s = keyring::ValidateKeyringName(req.keyring()); !s.ok()) return ToGrpc(s);
  // SIGN (the frontend that issues the sessions) or ADMIN; only a refusal of both is audited.
  if (!Authorize(caller, v1::AuthConfig::SIGN, req.keyring(), "").ok()) {
    if (grpc::Status s = Authorize(caller, v1::AuthConfig::ADMIN, req.keyring(), "Revoke");
        !s.ok()) {
      if (s.error_code() != grpc::StatusCode::PERMISSION_DENIED) return s;
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat(caller.identity, " may not Revoke on keyring \"",
                                       req.keyring(), "\" (needs SIGN or ADMIN)"));
    }
  }
  const engine::Actor actor(caller.audit_name().empty() ? "local" : caller.audit_name(), deadline);
  absl::StatusOr<engine::RevokeOutcome> r;
  switch (req.target_case()) {
    case v1::RevokeRequest::kToken:
      r = engine_->RevokeToken(actor, req.keyring(), req.token(), req.audience());
      break;
    case v1::RevokeRequest::kSubject:
      r = engine_->RevokeSubject(actor, req.keyring(), req.subject());
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "target: token or subject required");
  }
  if (!r.ok()) return ToGrpc(r.status());
  resp->mutable_revoked_at()->set_seconds(r->revoked_at);
  resp->mutable_drop_after()->set_seconds(r->drop_after);
  return grpc::Status::OK;
}

template <typename BatchReq, typename BatchResp, typename DoItem>
grpc::Status SessionTokensService::RunBatch(const BatchReq& req, BatchResp* resp,
                                            const Caller& caller, Role role, absl::string_view rpc,
                                            DoItem do_item) const {
  if (req.items_size() > max_batch_items_) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("items: ", req.items_size(), " exceeds the batch limit of ",
                                     max_batch_items_));
  }
  if (auth_ != nullptr && auth_->enabled() && !caller.authenticated()) {
    return Authorize(caller, role, "", rpc);
  }
  resp->mutable_items()->Reserve(req.items_size());
  const engine::Engine::View view = engine_->CurrentView();  // one snapshot for the batch
  for (const auto& item : req.items()) {
    auto* out = resp->add_items();
    grpc::Status s = do_item(item, out->mutable_response(), view);
    if (!s.ok()) {
      out->clear_response();
      out->set_code(s.error_code());
      out->set_message(s.error_message());
    }
  }
  return grpc::Status::OK;
}

grpc::Status SessionTokensService::DoBatchSign(const v1::BatchSignRequest& req,
                                               v1::BatchSignResponse* resp,
                                               const Caller& caller) const {
  return RunBatch(
      req, resp, caller, v1::AuthConfig::SIGN, "BatchSign",
      [&](const v1::SignRequest& item, v1::SignResponse* out, const engine::Engine::View& view) {
        return DoSign(item, out, caller, &view);
      });
}

grpc::Status SessionTokensService::DoBatchVerify(const v1::BatchVerifyRequest& req,
                                                 v1::BatchVerifyResponse* resp,
                                                 const Caller& caller) const {
  return RunBatch(
      req, resp, caller, v1::AuthConfig::VERIFY, "BatchVerify",
      [&](const v1::VerifyRequest& item, v1::VerifyResponse* out,
          const engine::Engine::View& view) { return DoVerify(item, out, caller, &view); });
}

namespace {
// Unary callback handlers finish inline: the work is CPU-only and short.
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}
}  // namespace

void SessionTokensService::EnableRpcMetrics(metrics::RpcStats* stats, CallLogger log) {
  stats_ = stats;
  log_ = std::move(log);
  const char* names[kMethodCount] = {"Sign", "Verify", "BatchSign", "BatchVerify", "Revoke"};
  for (int m = 0; m < kMethodCount; ++m) {
    stats_index_[m] =
        stats->Index(absl::StrCat("/", v1::SessionTokens::service_full_name(), "/", names[m]));
  }
}

grpc::Status SessionTokensService::Observe(Method m, absl::Time start, grpc::Status status) const {
  if (stats_ == nullptr) return status;
  const absl::Duration latency = absl::Now() - start;
  const int code = static_cast<int>(status.error_code());
  stats_->Record(stats_index_[m], code, latency);
  if (log_) {
    static constexpr const char* kPaths[kMethodCount] = {
        "/sessiontoken.v1.SessionTokens/Sign", "/sessiontoken.v1.SessionTokens/Verify",
        "/sessiontoken.v1.SessionTokens/BatchSign", "/sessiontoken.v1.SessionTokens/BatchVerify",
        "/sessiontoken.v1.SessionTokens/Revoke"};
    log_(kPaths[m], code, latency);
  }
  return status;
}

// Latency here runs from the handler's start to its status: the request is already parsed
// (gRPC's own share is in its transport, and the same for every method).
grpc::ServerUnaryReactor* SessionTokensService::BatchSign(grpc::CallbackServerContext* ctx,
                                                          const v1::BatchSignRequest* req,
                                                          v1::BatchSignResponse* resp) {
  const absl::Time start = stats_ != nullptr ? absl::Now() : absl::Time();
  return FinishNow(ctx, Observe(kBatchSign, start, DoBatchSign(*req, resp, Identify(*ctx))));
}

grpc::ServerUnaryReactor* SessionTokensService::BatchVerify(grpc::CallbackServerContext* ctx,
                                                            const v1::BatchVerifyRequest* req,
                                                            v1::BatchVerifyResponse* resp) {
  const absl::Time start = stats_ != nullptr ? absl::Now() : absl::Time();
  return FinishNow(ctx, Observe(kBatchVerify, start, DoBatchVerify(*req, resp, Identify(*ctx))));
}

grpc::ServerUnaryReactor* SessionTokensService::Sign(grpc::CallbackServerContext* ctx,
                                                     const v1::SignRequest* req,
                                                     v1::SignResponse* resp) {
  const absl::Time start = stats_ != nullptr ? absl::Now() : absl::Time();
  return FinishNow(ctx, Observe(kSign, start, DoSign(*req, resp, Identify(*ctx))));
}

grpc::ServerUnaryReactor* SessionTokensService::Verify(grpc::CallbackServerContext* ctx,
                                                       const v1::VerifyRequest* req,
                                                       v1::VerifyResponse* resp) {
  const absl::Time start = stats_ != nullptr ? absl::Now() : absl::Time();
  return FinishNow(ctx, Observe(kVerify, start, DoVerify(*req, resp, Identify(*ctx))));
}

grpc::ServerUnaryReactor* SessionTokensService::Revoke(grpc::CallbackServerContext* ctx,
                                                       const v1::RevokeRequest* req,
                                                       v1::RevokeResponse* resp) {
  const absl::Time start = stats_ != nullptr ? absl::Now() : absl::Time();
  Caller caller = Identify(*ctx);
  if (caller.peer.empty()) caller.peer = ctx->peer();  // the audit log's name without auth
  const auto d = ctx->deadline();
  const absl::Time deadline = d == std::chrono::system_clock::time_point::max()
                                  ? absl::InfiniteFuture()
                                  : absl::FromChrono(d);
  return FinishNow(ctx, Observe(kRevoke, start, DoRevoke(*req, resp, caller, deadline)));
}

}  // namespace sessiontoken::service
