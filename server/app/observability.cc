#include "server/app/observability.h"

#include "absl/strings/str_cat.h"
#include "server/app/log.h"
#include "server/service/rpc_metrics.h"

namespace sessiontoken::app {

Observability::Observability(const Settings& settings, engine::AuditLog* audit)
    : settings_(settings),
      audit_(audit, &usage_,
             [](const engine::AuditEvent& e) {
               Log("WARNING", absl::StrCat(e.operation, " of keyring ", e.keyring, ": ", e.warning),
                   {{"keyring", e.keyring}, {"operation", e.operation}});
             }),
      rpcs_(service::ServedMethods()),
      sampler_(&usage_) {}

Observability::~Observability() = default;

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
Observability::Interceptors() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  if (settings_.metrics_listen.empty() && !settings_.log_calls) return out;
  out.push_back(std::make_unique<service::RpcMetricsInterceptorFactory>(&rpcs_, CallLog()));
  return out;
}

void Observability::Observe(service::SessionTokensService* tokens) {
  if (settings_.metrics_listen.empty() && !settings_.log_calls) return;
  tokens->EnableRpcMetrics(&rpcs_, CallLog());
}

service::CallLogger Observability::CallLog() const {
  if (!settings_.log_calls) return nullptr;
  return [](absl::string_view method, int code, absl::Duration latency) {
    const std::string us = absl::StrCat(absl::ToInt64Microseconds(latency));
    Log("INFO", "call",
        {{"method", method}, {"code", metrics::StatusCodeName(code)}, {"latency_us", us}});
  };
}

absl::StatusOr<int> Observability::StartListener(const engine::Engine* engine,
                                                 metrics::StoreHealthSource store_health) {
  if (settings_.metrics_listen.empty()) return 0;
  metrics::CollectorSources sources;
  sources.engine = engine;
  sources.usage = &usage_;
  sources.rpcs = &rpcs_;
  sources.changes = &audit_;
  sources.store_health = std::move(store_health);
  absl::StatusOr<std::unique_ptr<metrics::MetricsListener>> l = metrics::MetricsListener::Start(
      settings_.metrics_listen, std::make_shared<metrics::MetricsCollector>(std::move(sources)));
  if (!l.ok()) return l.status();
  listener_ = *std::move(l);
  return listener_->port();
}

}  // namespace sessiontoken::app
