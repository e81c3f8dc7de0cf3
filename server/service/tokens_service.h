// SessionTokensService: the hot-path gRPC handlers (callback API). Translates protos to
// Engine calls and back; no crypto and no keyring logic here.
#ifndef SESSIONTOKEN_SERVER_SERVICE_TOKENS_SERVICE_H_
#define SESSIONTOKEN_SERVER_SERVICE_TOKENS_SERVICE_H_

#include "server/engine/engine.h"
#include "server/service/auth.h"
#include "server/service/rpc_metrics.h"
#include "sessiontoken/v1/tokens.grpc.pb.h"

namespace sessiontoken::service {

class SessionTokensService final : public v1::SessionTokens::CallbackService {
 public:
  // `max_batch_items` bounds BatchSign/BatchVerify requests. `auth` (may be null: no access
  // control) must outlive the service.
  explicit SessionTokensService(engine::Engine* engine, int max_batch_items = 1000,
                                const Authorizer* auth = nullptr)
      : engine_(engine), max_batch_items_(max_batch_items), auth_(auth) {}

  // Records every call's status code and latency in `stats` (and hands it to `log` when
  // set): the hot path's RPC metrics, without a gRPC interceptor (RpcMetricsInterceptorFactory
  // leaves this service's calls to it). Call before serving; `stats` must outlive the service.
  void EnableRpcMetrics(metrics::RpcStats* stats, CallLogger log);

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* ctx, const v1::SignRequest* req,
                                 v1::SignResponse* resp) override;
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* ctx, const v1::VerifyRequest* req,
                                   v1::VerifyResponse* resp) override;
  grpc::ServerUnaryReactor* BatchSign(grpc::CallbackServerContext* ctx,
                                      const v1::BatchSignRequest* req,
                                      v1::BatchSignResponse* resp) override;
  grpc::ServerUnaryReactor* BatchVerify(grpc::CallbackServerContext* ctx,
                                        const v1::BatchVerifyRequest* req,
                                        v1::BatchVerifyResponse* resp) override;
  grpc::ServerUnaryReactor* Revoke(grpc::CallbackServerContext* ctx, const v1::RevokeRequest* req,
                                   v1::RevokeResponse* resp) override;

  // The handlers' logic, callable without a gRPC server (tests). `caller` is checked
  // against the Authorizer when there is one.
  grpc::Status DoSign(const v1::SignRequest& req, v1::SignResponse* resp, const Caller& caller = {},
                      const engine::Engine::View* view = nullptr) const;
  grpc::Status DoVerify(const v1::VerifyRequest& req, v1::VerifyResponse* resp,
                        const Caller& caller = {},
                        const engine::Engine::View* view = nullptr) const;
  grpc::Status DoBatchSign(const v1::BatchSignRequest& req, v1::BatchSignResponse* resp,
                           const Caller& caller = {}) const;
  grpc::Status DoBatchVerify(const v1::BatchVerifyRequest& req, v1::BatchVerifyResponse* resp,
                             const Caller& caller = {}) const;
  // Allowed with SIGN on the keyring or ADMIN. `deadline`: the call's (bounds how long the
  // revocation may wait for other changes to the keyring).
  grpc::Status DoRevoke(const v1::RevokeRequest& req, v1::RevokeResponse* resp,
                        const Caller& caller = {},
                        absl::Time deadline = absl::InfiniteFuture()) const;

 private:
  // Runs `do_item` over a batch's items with one snapshot, per-item errors.
  template <typename BatchReq, typename BatchResp, typename DoItem>
  grpc::Status RunBatch(const BatchReq& req, BatchResp* resp, const Caller& caller, Role role,
                        absl::string_view rpc, DoItem do_item) const;
  grpc::Status Authorize(const Caller& caller, Role role, absl::string_view keyring,
                         absl::string_view rpc) const {
    return auth_ == nullptr ? grpc::Status::OK : auth_->Check(caller, role, keyring, rpc);
  }
  Caller Identify(const grpc::CallbackServerContext& ctx) const {
    return auth_ == nullptr || !auth_->enabled() ? Caller{} : auth_->Identify(ctx);
  }

  // Records one finished call of method `m` (a kMethod* index) that started at `start`.
  enum Method { kSign, kVerify, kBatchSign, kBatchVerify, kRevoke, kMethodCount };
  grpc::Status Observe(Method m, absl::Time start, grpc::Status status) const;

  engine::Engine* engine_;
  const int max_batch_items_;
  metrics::RpcStats* stats_ = nullptr;
  CallLogger log_;
  int stats_index_[kMethodCount] = {};
  const Authorizer* auth_;
};

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_TOKENS_SERVICE_H_
