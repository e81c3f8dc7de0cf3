#include "server/service/rpc_metrics.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "sessiontoken/v1/admin.grpc.pb.h"
#include "sessiontoken/v1/tokens.grpc.pb.h"

namespace sessiontoken::service {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr absl::string_view kTokensPrefix = "/sessiontoken.v1.SessionTokens/";

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(metrics::RpcStats* stats, const CallLogger* log, const char* method)
      : stats_(stats),
        log_(log),
        index_(stats->Index(method)),
        // Logged as named only when served: a client cannot write its own method paths.
        method_(index_ == stats->unknown_index() ? "unknown" : method),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const int code = static_cast<int>(methods->GetSendStatus().error_code());
      const absl::Duration latency = absl::FromChrono(std::chrono::steady_clock::now() - start_);
      stats_->Record(index_, code, latency);
      if (*log_) (*log_)(method_, code, latency);
    }
    methods->Proceed();
  }

 private:
  metrics::RpcStats* const stats_;
  const CallLogger* const log_;
  const int index_;
  const char* const method_;
  const std::chrono::steady_clock::time_point start_;
};

}  // namespace

std::vector<std::string> ServedMethods() {
  std::vector<std::string> out;
  for (const char* name :
       {v1::SessionTokens::service_full_name(), v1::KeyAdmin::service_full_name()}) {
    const google::protobuf::ServiceDescriptor* s =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      out.push_back(absl::StrCat("/", s->full_name(), "/", s->method(i)->name()));
    }
  }
  for (const char* m : {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    out.push_back(m);
  }
  return out;
}

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // The hot path's calls are recorded by SessionTokensService itself (no interceptor on
  // them: a gRPC interceptor costs ~16k instructions per call, measured with
  // tests/bench/callgrind_service.py).
  if (absl::StartsWith(info->method(), kTokensPrefix)) return nullptr;
  return new RpcMetricsInterceptor(stats_, &log_, info->method());
}

}  // namespace sessiontoken::service
