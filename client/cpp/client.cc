#include "client/cpp/client.h"

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace sessiontoken::client {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

template <typename Resp, typename Fn>
absl::StatusOr<Resp> Call(Fn&& fn) {
  Resp resp;
  grpc::Status s = fn(&resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::New(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("server: required");
  auto channel = grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials());
  if (channel == nullptr) return absl::InternalError("cannot create channel");
  return std::unique_ptr<Client>(new Client(options, std::move(channel)));
}

Client::Client(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      tokens_(v1::SessionTokens::NewStub(channel_)),
      admin_(v1::KeyAdmin::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Client::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  return ctx;
}

absl::StatusOr<v1::SignResponse> Client::Sign(const v1::SignRequest& req) {
  auto ctx = NewContext();
  return Call<v1::SignResponse>([&](auto* r) { return tokens_->Sign(ctx.get(), req, r); });
}

absl::StatusOr<v1::VerifyResponse> Client::Verify(const v1::VerifyRequest& req) {
  auto ctx = NewContext();
  return Call<v1::VerifyResponse>([&](auto* r) { return tokens_->Verify(ctx.get(), req, r); });
}

absl::StatusOr<v1::RotateResponse> Client::Rotate(const v1::RotateRequest& req) {
  auto ctx = NewContext();
  return Call<v1::RotateResponse>([&](auto* r) { return admin_->Rotate(ctx.get(), req, r); });
}

absl::StatusOr<v1::ListKeysResponse> Client::ListKeys(const v1::ListKeysRequest& req) {
  auto ctx = NewContext();
  return Call<v1::ListKeysResponse>([&](auto* r) { return admin_->ListKeys(ctx.get(), req, r); });
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse> Client::Health(const std::string& service) {
  auto ctx = NewContext();
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  return Call<grpc::health::v1::HealthCheckResponse>(
      [&](auto* r) { return health_->Check(ctx.get(), req, r); });
}

}  // namespace sessiontoken::client
