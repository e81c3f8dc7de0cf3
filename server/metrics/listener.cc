#include "server/metrics/listener.h"

#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::metrics {

absl::Status ValidateListenAddress(absl::string_view address) {
  const size_t colon = address.rfind(':');
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("metrics_listen: \"", address, "\": ", why,
                                                   " (expected host:port, e.g. 127.0.0.1:9464)"));
  };
  if (colon == absl::string_view::npos) return bad("no port");
  const absl::string_view host = address.substr(0, colon);
  int port = -1;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return bad("bad port");
  }
  if (host.empty()) return bad("no host (a bare port would listen on every interface)");
  if (host.front() == '[' ? host.back() != ']' : host.find(':') != absl::string_view::npos) {
    return bad("an IPv6 host must be in brackets");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MetricsListener>> MetricsListener::Start(
    const std::string& address, std::shared_ptr<prometheus::Collectable> collectable) {
  if (absl::Status s = ValidateListenAddress(address); !s.ok()) return s;
  std::unique_ptr<prometheus::Exposer> exposer;
  // prometheus-cpp reports a failed bind with an exception; none leaves this function.
  try {
    exposer = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: cannot listen on ", address, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics_listen: cannot listen on ", address));
  }
  exposer->RegisterCollectable(collectable);
  return std::unique_ptr<MetricsListener>(
      new MetricsListener(std::move(exposer), std::move(collectable), ports.front()));
}

MetricsListener::~MetricsListener() = default;

}  // namespace sessiontoken::metrics
