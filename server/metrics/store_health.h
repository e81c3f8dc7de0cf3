// StoreHealth: how current this replica's keyrings are, for the metrics
// sessiontoken_store_loaded_revision, sessiontoken_store_staleness_seconds and
// sessiontoken_store_watch_restarts_total. The replicated (etcd) store's watch fills it in
// through a StoreHealthSource given to the MetricsCollector; without a source (the file
// store, where this process is the only writer) these three metrics are not exported.
#ifndef SESSIONTOKEN_SERVER_METRICS_STORE_HEALTH_H_
#define SESSIONTOKEN_SERVER_METRICS_STORE_HEALTH_H_

#include <cstdint>
#include <functional>

namespace sessiontoken::metrics {

struct StoreHealth {
  // Store revision of the snapshot this replica serves (etcd: the revision it loaded or
  // watched up to).
  int64_t loaded_revision = 0;
  // How long since this replica last knew its copy was current (a watch event or progress
  // answer); 0 while the watch is connected and current.
  double staleness_seconds = 0;
  // Times the watch had to be restarted (broken stream, compaction resync) since start.
  uint64_t watch_restarts = 0;
};

// Called at every scrape, from the metrics listener's thread: must be thread-safe and cheap.
using StoreHealthSource = std::function<StoreHealth()>;

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_STORE_HEALTH_H_
