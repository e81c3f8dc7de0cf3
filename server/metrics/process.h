// Process metrics in the Prometheus client conventions (process_cpu_seconds_total,
// process_resident_memory_bytes...), read from /proc/self at each scrape (Linux).
#ifndef SESSIONTOKEN_SERVER_METRICS_PROCESS_H_
#define SESSIONTOKEN_SERVER_METRICS_PROCESS_H_

#include <vector>

#include "prometheus/metric_family.h"

namespace sessiontoken::metrics {

// The process_* families; those that cannot be read are left out.
std::vector<prometheus::MetricFamily> ProcessFamilies();

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_PROCESS_H_
