// Fuzz target "config": config::ParseConfig (protobuf text format + validation).
// The input is the config file text. It is parsed twice, with and without a --max_ttl
// override. Properties:
//  * A rejected file gives INVALID_ARGUMENT naming the source ("fuzz.textproto: ...").
//  * An accepted config satisfies every documented check: max_payload_bytes in [0, 3000],
//    no negative duration, max_batch_items >= 0, keyring names valid and unique, every
//    keyring policy valid against the server's max TTL (override, else limits.max_ttl,
//    else the default).
//  * Round trip: the accepted config printed as text parses (and validates) to an equal
//    message.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/config/config.h"
#include "server/keyring/keyring.h"
#include "server/keyring/policy.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace sessiontoken;

constexpr char kSource[] = "fuzz.textproto";
const absl::Duration kDefaultMaxTtl = absl::Hours(24 * 31);

bool NonNegative(const google::protobuf::Duration& d) { return d.seconds() >= 0 && d.nanos() >= 0; }

void CheckParse(absl::string_view text, std::optional<absl::Duration> max_ttl_override) {
  absl::StatusOr<v1::ServerConfig> cfg =
      config::ParseConfig(text, kSource, max_ttl_override, kDefaultMaxTtl);
  if (!cfg.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(cfg.status()));
    FUZZ_CHECK(absl::StartsWith(cfg.status().message(), std::string(kSource) + ": "));
    return;
  }
  const v1::Limits& l = cfg->limits();
  FUZZ_CHECK(l.max_payload_bytes() >= 0 && l.max_payload_bytes() <= 3000);
  FUZZ_CHECK(engine::ValidateLimits(config::ToLimits(l)).ok());
  FUZZ_CHECK(NonNegative(l.max_ttl()) && NonNegative(l.max_clock_skew()));
  FUZZ_CHECK(l.max_batch_items() >= 0);
  FUZZ_CHECK(NonNegative(cfg->scheduler_interval()) && NonNegative(cfg->shutdown_grace()));
  const absl::Duration server_max = max_ttl_override.has_value() ? *max_ttl_override
                                    : l.has_max_ttl() ? absl::Seconds(l.max_ttl().seconds())
                                                      : kDefaultMaxTtl;
  std::set<std::string> names;
  for (const v1::KeyringConfig& k : cfg->keyrings()) {
    FUZZ_CHECK(keyring::ValidateKeyringName(k.name()).ok());
    FUZZ_CHECK(names.insert(k.name()).second);
    FUZZ_CHECK(keyring::ValidatePolicy(k.policy(), server_max).ok());
  }

  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*cfg, &printed));
  absl::StatusOr<v1::ServerConfig> again =
      config::ParseConfig(printed, kSource, max_ttl_override, kDefaultMaxTtl);
  if (!again.ok()) {
    std::fprintf(stderr, "re-parse of the printed config failed: %s\n--- printed:\n%s\n",
                 std::string(again.status().message()).c_str(), printed.c_str());
  }
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(*cfg, *again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  CheckParse(text, std::nullopt);
  CheckParse(text, absl::Hours(1));
  return 0;
}
