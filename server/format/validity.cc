#include "server/format/validity.h"

#include <limits>

namespace sessiontoken::format {

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return out;
}

VerifyStatus CheckValidity(int64_t issued_at, int64_t expires_at, absl::Time now,
                           absl::Duration max_clock_skew, ExpiryEdge edge) {
  const int64_t now_s = absl::ToUnixSeconds(now);
  if (issued_at > SaturatingAdd(now_s, absl::ToInt64Seconds(max_clock_skew))) {
    return VerifyStatus::kNotYetValid;
  }
  const bool expired = edge == ExpiryEdge::kExpiredAt ? now_s >= expires_at : now_s > expires_at;
  return expired ? VerifyStatus::kExpired : VerifyStatus::kValid;
}

}  // namespace sessiontoken::format
