// KeyUsageRecorder: counts every Sign and Verify result per keyring and per key (the
// engine's observer), and answers "is this key still in use?" over the last hour and day.
// The hot path is lock-free: a per-thread cache finds the counters, which are relaxed
// atomics. Counters exist only for keyrings and keys that exist (garbage tokens add none).
// Counts are this process's own, since it started.
#ifndef SESSIONTOKEN_SERVER_METRICS_KEY_USAGE_H_
#define SESSIONTOKEN_SERVER_METRICS_KEY_USAGE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/observer.h"

namespace sessiontoken::metrics {

// One slot per format::VerifyStatus value.
inline constexpr int kVerifyStatusCount = 9;

// One key's totals since start (a consistent-enough copy of the live counters).
struct KeyTotals {
  uint32_t key_id = 0;
  std::array<uint64_t, kVerifyStatusCount> results{};  // by VerifyStatus
  uint64_t signed_tokens = 0;
  absl::Time last_verified = absl::InfinitePast();  // last VALID result; InfinitePast: never
};

// One keyring's totals since start.
struct KeyringTotals {
  std::string keyring;
  std::array<uint64_t, kVerifyStatusCount> results{};  // by VerifyStatus
  uint64_t refresh_recommended = 0;
  std::vector<KeyTotals> keys;  // keys that saw a token, by key id
};

// A key's recent use (GetKeyUsage).
struct KeyUsage {
  uint32_t key_id = 0;
  uint64_t verified_last_hour = 0;  // VALID results
  uint64_t verified_last_day = 0;
  uint64_t rejected_disabled_last_day = 0;  // KEY_DISABLED results
  uint64_t signed_last_day = 0;
  absl::Time last_verified = absl::InfinitePast();
};

class KeyUsageRecorder final : public engine::EngineObserver {
 public:
  // `counting_since`: when counting starts (reported with every usage answer).
  explicit KeyUsageRecorder(absl::Time counting_since = absl::Now());
  ~KeyUsageRecorder() override;
  absl::Time counting_since() const { return counting_since_; }

  void OnVerify(absl::string_view keyring, const keyring::Keyring& snapshot,
                const format::VerifyResult& result, absl::Time now) override;
  void OnSign(absl::string_view keyring, const keyring::Keyring& snapshot, uint32_t key_id,
              absl::Time now) override;

  // Records the current totals of every used key as of `now`; the windows of Usage() are
  // measured against these samples. Call about once a minute (UsageSampler does).
  void Sample(absl::Time now);
  // Recent use of `key_id` of `keyring` at `now` (all zero when it saw no token). The
  // hour is exact to the sampling interval, the day to the hour.
  KeyUsage Usage(absl::string_view keyring, uint32_t key_id, absl::Time now) const;
  // Every keyring's totals, sorted by name (the metrics exporter reads these).
  std::vector<KeyringTotals> Totals() const;

 private:
  struct KeyCounters;
  struct KeyringCounters;
  struct Found {
    KeyringCounters* keyring;
    KeyCounters* key;  // null for a result that names no existing key
  };
  // The counters of `keyring` (and of `key_id` when non-zero and in `snapshot`).
  Found Lookup(absl::string_view keyring, uint32_t key_id, const keyring::Keyring& snapshot);
  Found Create(absl::string_view keyring, uint32_t key_id, const keyring::Keyring& snapshot);
  static KeyTotals Read(const KeyCounters& k);

  const absl::Time counting_since_;
  const uint64_t instance_;  // never reused: tells this recorder's cache entries apart
  mutable absl::Mutex mu_;   // creation of counters, samples; never on the hot path's hits
  absl::flat_hash_map<std::string, std::unique_ptr<KeyringCounters>> keyrings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_KEY_USAGE_H_
