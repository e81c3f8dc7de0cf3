// ServiceConfig: the gRPC service config every client shares
// (proto/sessiontoken/v1/service_config.json, compiled in): retries go to gRPC, per-method
// default deadlines are set by the client on each call.
#ifndef SESSIONTOKEN_CLIENT_CPP_SERVICE_CONFIG_H_
#define SESSIONTOKEN_CLIENT_CPP_SERVICE_CONFIG_H_

#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sessiontoken::client {

// The text of proto/sessiontoken/v1/service_config.json as built.
absl::string_view SharedServiceConfigJson();

struct ServiceConfig {
  // The config without its "timeout"s, for grpc::ChannelArguments::SetServiceConfigJSON.
  // (gRPC 1.51 core sets a deadline from a methodConfig timeout inaccurately: a 2 s timeout
  // can end a call after 0.4 s. The client sets each call's deadline itself instead.)
  std::string grpc_json;
  // ("service", "method") -> timeout; method "" = every method of the service.
  std::map<std::pair<std::string, std::string>, absl::Duration> timeouts;

  // The default deadline of service/method (exact name, else the service's), or
  // InfiniteDuration when the config names none.
  absl::Duration Timeout(absl::string_view service, absl::string_view method) const;
};

// Parses a service config (JSON with a "methodConfig" list).
absl::StatusOr<ServiceConfig> ParseServiceConfig(absl::string_view json);

}  // namespace sessiontoken::client

#endif  // SESSIONTOKEN_CLIENT_CPP_SERVICE_CONFIG_H_
