// Observability: the parts that watch the server, built from the settings and wired by
// main.cc: key usage counting (the engine's observer, always on: GetKeyUsage and the
// in-use warnings need it), the usage-aware audit log, RPC statistics and per-call logs
// (a gRPC interceptor), and the Prometheus listener (--metrics_listen, off by default).
#ifndef SESSIONTOKEN_SERVER_APP_OBSERVABILITY_H_
#define SESSIONTOKEN_SERVER_APP_OBSERVABILITY_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "server/app/settings.h"
#include "server/engine/engine.h"
#include "server/metrics/collector.h"
#include "server/metrics/key_usage.h"
#include "server/metrics/listener.h"
#include "server/metrics/rpc_stats.h"
#include "server/metrics/sampler.h"
#include "server/metrics/usage_audit.h"
#include "server/service/tokens_service.h"

namespace sessiontoken::app {

class Observability {
 public:
  // `audit` (the configured audit log; may be null) must outlive this object.
  Observability(const Settings& settings, engine::AuditLog* audit);
  ~Observability();

  // For EngineOptions: the observer and the audit log the engine should write to.
  engine::EngineObserver* observer() { return &usage_; }
  engine::AuditLog* audit_log() { return &audit_; }
  const metrics::KeyUsageRecorder* usage() const { return &usage_; }

  // The gRPC server's interceptors: RPC metrics and per-call logs, when either is on.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  Interceptors();
  // The same for the hot-path service, which records its own calls.
  void Observe(service::SessionTokensService* tokens);

  // Starts the metrics listener over `engine` when --metrics_listen is set; returns its
  // port (0: metrics off). `store_health` (optional) feeds the store_* metrics.
  absl::StatusOr<int> StartListener(const engine::Engine* engine,
                                    metrics::StoreHealthSource store_health = nullptr);
  // Stops the metrics listener (before the engine it reads goes away).
  void StopListener() { listener_.reset(); }

 private:
  const Settings& settings_;
  metrics::KeyUsageRecorder usage_;
  metrics::UsageAuditLog audit_;
  metrics::RpcStats rpcs_;
  metrics::UsageSampler sampler_;
  service::CallLogger CallLog() const;
  std::unique_ptr<metrics::MetricsListener> listener_;
};

}  // namespace sessiontoken::app

#endif  // SESSIONTOKEN_SERVER_APP_OBSERVABILITY_H_
