// MetricsCollector: everything /metrics exports, as prometheus-cpp metric families built at
// scrape time from the live counters (KeyUsageRecorder, RpcStats, UsageAuditLog), the
// engine's current keyring snapshots, the store's health and the process. Never reads a
// token, a payload or key material: only names, key ids, states, times and counts.
// The families and their labels are listed in docs/operations.md ("Metrics").
#ifndef SESSIONTOKEN_SERVER_METRICS_COLLECTOR_H_
#define SESSIONTOKEN_SERVER_METRICS_COLLECTOR_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/engine/engine.h"
#include "server/metrics/key_usage.h"
#include "server/metrics/rpc_stats.h"
#include "server/metrics/store_health.h"
#include "server/metrics/usage_audit.h"

namespace sessiontoken::metrics {

// The names of every family the collector can export (process_* included), sorted: the
// dashboard and alert checks compare their queries with this list.
std::vector<std::string> ExportedFamilyNames();

struct CollectorSources {
  const engine::Engine* engine = nullptr;       // keyring snapshots (may be null)
  const KeyUsageRecorder* usage = nullptr;      // Sign/Verify results (may be null)
  const RpcStats* rpcs = nullptr;               // calls and latency (may be null)
  const UsageAuditLog* changes = nullptr;       // keyring changes (may be null)
  StoreHealthSource store_health;               // unset: no store_* families
  std::function<absl::Time()> now = absl::Now;  // for ages and times until transitions
  bool process = true;                          // the process_* families
};

class MetricsCollector final : public prometheus::Collectable {
 public:
  explicit MetricsCollector(CollectorSources sources) : s_(std::move(sources)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  void CollectUsage(std::vector<prometheus::MetricFamily>* out) const;
  void CollectRpcs(std::vector<prometheus::MetricFamily>* out) const;
  void CollectKeyrings(std::vector<prometheus::MetricFamily>* out) const;
  void CollectChanges(std::vector<prometheus::MetricFamily>* out) const;
  void CollectStore(std::vector<prometheus::MetricFamily>* out) const;
  const CollectorSources s_;
};

// The text exposition format of `families` (what GET /metrics returns).
std::string Serialize(const std::vector<prometheus::MetricFamily>& families);

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_COLLECTOR_H_
