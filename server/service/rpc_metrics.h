// RPC metrics at the gRPC edge: a server interceptor that records every finished call's
// service, method, status code and latency in metrics::RpcStats, and optionally hands it
// to a per-call log, for the admin, health and reflection services (no code in their
// handlers; it sees only the method path and the status). The hot path (SessionTokens)
// is left out: its handlers record their own calls (SessionTokensService::EnableRpcMetrics),
// because a gRPC interceptor costs about a fifth of a Verify call's instructions.
#ifndef SESSIONTOKEN_SERVER_SERVICE_RPC_METRICS_H_
#define SESSIONTOKEN_SERVER_SERVICE_RPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/metrics/rpc_stats.h"

namespace sessiontoken::service {

// Every method path this server serves ("/package.Service/Method"): the label values
// RpcStats accepts.
std::vector<std::string> ServedMethods();

// Hears one finished call: its method path, gRPC status code and latency. Never given a
// request, a reply or metadata.
using CallLogger = std::function<void(absl::string_view method, int code, absl::Duration latency)>;

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `stats` must outlive the server; `log` may be empty (no per-call log).
  RpcMetricsInterceptorFactory(metrics::RpcStats* stats, CallLogger log)
      : stats_(stats), log_(std::move(log)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  metrics::RpcStats* const stats_;
  const CallLogger log_;
};

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_RPC_METRICS_H_
