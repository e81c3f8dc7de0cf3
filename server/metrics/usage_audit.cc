#include "server/metrics/usage_audit.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sessiontoken::metrics {
namespace {

// The keyring changes counted (fixed names: a client cannot add label values).
bool IsChange(absl::string_view op) {
  for (absl::string_view known : {"rotate", "stage", "promote", "disable", "enable", "destroy",
                                  "import", "create_keyring", "set_policy"}) {
    if (op == known) return true;
  }
  return false;
}

}  // namespace

std::string InUseWarning(absl::string_view operation, const KeyUsage& u) {
  std::string last =
      u.last_verified == absl::InfinitePast()
          ? ""
          : absl::StrCat(", last at ", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", u.last_verified,
                                                        absl::UTCTimeZone()));
  if (operation == "disable" && u.verified_last_day > 0) {
    return absl::StrCat("key ", u.key_id, " was still in use on this replica: it verified ",
                        u.verified_last_hour, " token(s) in the last hour and ",
                        u.verified_last_day, " in the last day", last,
                        "; those sessions now get KEY_DISABLED (EnableKey restores them)");
  }
  if (operation == "destroy" && (u.verified_last_day > 0 || u.rejected_disabled_last_day > 0)) {
    return absl::StrCat(
        "key ", u.key_id, " was still presented on this replica: ", u.rejected_disabled_last_day,
        " token(s) refused as KEY_DISABLED and ", u.verified_last_day, " verified in the last day",
        last, "; its material is gone, those sessions cannot come back");
  }
  return "";
}

void UsageAuditLog::Record(const engine::AuditEvent& event) {
  const bool ok = event.outcome == "ok";
  engine::AuditEvent e = event;
  if (ok && e.key_id != 0 && usage_ != nullptr &&
      (e.operation == "disable" || e.operation == "destroy")) {
    std::string w = InUseWarning(e.operation, usage_->Usage(e.keyring, e.key_id, e.time));
    if (!w.empty()) e.warning = e.warning.empty() ? w : absl::StrCat(e.warning, "; ", w);
  }
  if (IsChange(e.operation)) {
    absl::MutexLock lock(&mu_);
    if (ok) {
      ++changes_[{e.keyring, e.operation}];
    } else {
      ++failures_[e.operation];
    }
  }
  if (inner_ != nullptr) inner_->Record(e);
  if (!e.warning.empty() && e.warning != event.warning && on_warning_) on_warning_(e);
}

std::vector<UsageAuditLog::Change> UsageAuditLog::Changes() const {
  std::vector<Change> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [k, n] : changes_) out.push_back({k.first, k.second, n});
  }
  std::sort(out.begin(), out.end(), [](const Change& a, const Change& b) {
    return std::tie(a.keyring, a.operation) < std::tie(b.keyring, b.operation);
  });
  return out;
}

std::vector<UsageAuditLog::Change> UsageAuditLog::Failures() const {
  std::vector<Change> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [op, n] : failures_) out.push_back({"", op, n});
  }
  std::sort(out.begin(), out.end(),
            [](const Change& a, const Change& b) { return a.operation < b.operation; });
  return out;
}

}  // namespace sessiontoken::metrics
