// Loading and checking the server configuration file (protobuf text format, schema in
// proto/sessiontoken/v1/config.proto). Errors name the field and the line.
#ifndef SESSIONTOKEN_SERVER_CONFIG_CONFIG_H_
#define SESSIONTOKEN_SERVER_CONFIG_CONFIG_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/engine/limits.h"
#include "sessiontoken/v1/config.pb.h"

namespace sessiontoken::config {

// Parses and validates config text. `source` names it in messages (usually the path).
// Keyring policies are checked against the server's max TTL: `max_ttl_override` (a flag)
// when set, else the file's limits.max_ttl, else `default_max_ttl`.
absl::StatusOr<v1::ServerConfig> ParseConfig(absl::string_view text, absl::string_view source,
                                             std::optional<absl::Duration> max_ttl_override,
                                             absl::Duration default_max_ttl);
// The file's `limits` as engine limits, 0 meaning the default (validated by ParseConfig).
engine::Limits ToLimits(const v1::Limits& limits);

absl::StatusOr<v1::ServerConfig> LoadConfigFile(const std::string& path,
                                                std::optional<absl::Duration> max_ttl_override,
                                                absl::Duration default_max_ttl);

}  // namespace sessiontoken::config

#endif  // SESSIONTOKEN_SERVER_CONFIG_CONFIG_H_
