// MetricsListener: the Prometheus scrape endpoint (GET /metrics) on its own HTTP listener,
// prometheus-cpp's Exposer (civetweb). It binds exactly the address it is given.
#ifndef SESSIONTOKEN_SERVER_METRICS_LISTENER_H_
#define SESSIONTOKEN_SERVER_METRICS_LISTENER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"

namespace sessiontoken::metrics {

// Checks a listen address: "host:port" or "[v6]:port", with an explicit host (a bare port
// would bind every interface) and a port in 0..65535 (0: any free port).
absl::Status ValidateListenAddress(absl::string_view address);

class MetricsListener {
 public:
  // Listens on `address` (ValidateListenAddress) and serves `collectable` at /metrics.
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsListener>> Start(
      const std::string& address, std::shared_ptr<prometheus::Collectable> collectable);
  ~MetricsListener();

  int port() const { return port_; }

 private:
  MetricsListener(std::unique_ptr<prometheus::Exposer> exposer,
                  std::shared_ptr<prometheus::Collectable> collectable, int port)
      : exposer_(std::move(exposer)), collectable_(std::move(collectable)), port_(port) {}
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  const int port_;
};

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_LISTENER_H_
