// UsageAuditLog: the audit log the engine writes to when key usage is counted. It counts
// successful keyring changes by keyring and operation (rotations on the dashboard), and
// adds a warning to the event when a key that is still in use is disabled or destroyed
// (the scheduler's transitions and DisableKey/DestroyKey alike), then passes the event on.
#ifndef SESSIONTOKEN_SERVER_METRICS_USAGE_AUDIT_H_
#define SESSIONTOKEN_SERVER_METRICS_USAGE_AUDIT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/audit.h"
#include "server/metrics/key_usage.h"

namespace sessiontoken::metrics {

// The warning for disabling (`operation` "disable") or destroying ("destroy") a key with
// `usage`, or "" when the key is not in use.
std::string InUseWarning(absl::string_view operation, const KeyUsage& usage);

class UsageAuditLog final : public engine::AuditLog {
 public:
  struct Change {
    std::string keyring, operation;
    uint64_t count = 0;
  };
  // `inner` (may be null) receives every event; `usage` must outlive this log;
  // `on_warning` (optional) hears every event that got a warning.
  UsageAuditLog(engine::AuditLog* inner, const KeyUsageRecorder* usage,
                std::function<void(const engine::AuditEvent&)> on_warning = nullptr)
      : inner_(inner), usage_(usage), on_warning_(std::move(on_warning)) {}

  void Record(const engine::AuditEvent& e) override;

  // Successful changes so far, by keyring and operation (sorted), and failed ones by
  // operation (keyring = "").
  std::vector<Change> Changes() const;
  std::vector<Change> Failures() const;

 private:
  engine::AuditLog* const inner_;
  const KeyUsageRecorder* const usage_;
  const std::function<void(const engine::AuditEvent&)> on_warning_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::pair<std::string, std::string>, uint64_t> changes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_USAGE_AUDIT_H_
