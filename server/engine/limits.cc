#include "server/engine/limits.h"

#include "absl/strings/str_cat.h"

namespace sessiontoken::engine {

absl::Status ValidateLimits(const Limits& limits) {
  if (limits.max_payload_bytes < 1 || limits.max_payload_bytes > kMaxPayloadBytesCeiling) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_payload_bytes: must be between 1 and ", kMaxPayloadBytesCeiling));
  }
  if (limits.max_ttl < kMinTtl || limits.max_ttl > kTtlCeiling) {
    return absl::InvalidArgumentError("max_ttl: must be between 1s and 10 years");
  }
  if (limits.max_clock_skew < absl::ZeroDuration() ||
      limits.max_clock_skew > kMaxClockSkewCeiling) {
    return absl::InvalidArgumentError("max_clock_skew: must be between 0 and 24h");
  }
  if (limits.max_revocations < 1 || limits.max_revocations > kMaxRevocationsCeiling) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_revocations: must be between 1 and ", kMaxRevocationsCeiling));
  }
  return absl::OkStatus();
}

absl::Status CheckSize(absl::string_view field, size_t size, size_t limit) {
  if (size <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", size, " bytes exceeds the limit of ", limit));
}

absl::Status CheckLifetime(absl::string_view field, absl::Duration d, absl::Duration max) {
  if (d != absl::Trunc(d, absl::Seconds(1))) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be whole seconds"));
  }
  if (d < kMinTtl || d > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", absl::FormatDuration(d), " is outside the allowed range [",
                     absl::FormatDuration(kMinTtl), ", ", absl::FormatDuration(max), "]"));
  }
  return absl::OkStatus();
}

}  // namespace sessiontoken::engine
