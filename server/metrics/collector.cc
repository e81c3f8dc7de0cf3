#include "server/metrics/collector.h"

#include <algorithm>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"
#include "server/format/result.h"
#include "server/keyring/policy.h"
#include "server/metrics/process.h"
#include "sessiontoken/v1/common.pb.h"

namespace sessiontoken::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr char kVerifyResults[] = "sessiontoken_verify_results_total";
constexpr char kRefresh[] = "sessiontoken_refresh_recommended_total";
constexpr char kKeyVerifications[] = "sessiontoken_key_verifications_total";
constexpr char kKeySigned[] = "sessiontoken_key_signed_tokens_total";
constexpr char kKeyLastVerified[] = "sessiontoken_key_last_verified_timestamp_seconds";
constexpr char kRpcCalls[] = "sessiontoken_rpc_calls_total";
constexpr char kRpcDuration[] = "sessiontoken_rpc_duration_seconds";
constexpr char kRevision[] = "sessiontoken_keyring_revision";
constexpr char kPrimary[] = "sessiontoken_keyring_primary_key_id";
constexpr char kKeyAge[] = "sessiontoken_key_age_seconds";
constexpr char kNextTransition[] = "sessiontoken_key_next_transition_seconds";
constexpr char kChanges[] = "sessiontoken_keyring_changes_total";
constexpr char kChangeFailures[] = "sessiontoken_keyring_change_failures_total";
constexpr char kStoreRevision[] = "sessiontoken_store_loaded_revision";
constexpr char kStoreStaleness[] = "sessiontoken_store_staleness_seconds";
constexpr char kStoreRestarts[] = "sessiontoken_store_watch_restarts_total";

MetricFamily Family(const char* name, const char* help, MetricType type) {
  return MetricFamily{name, help, type, {}};
}

ClientMetric Sample(std::vector<ClientMetric::Label> labels, MetricType type, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

void Add(MetricFamily f, std::vector<MetricFamily>* out) {
  if (!f.metric.empty()) out->push_back(std::move(f));
}

std::string Name(format::VerifyStatus s) { return std::string(format::VerifyStatusName(s)); }

std::string StateName(v1::KeyState s) { return v1::KeyState_Name(s); }

}  // namespace

std::vector<std::string> ExportedFamilyNames() {
  std::vector<std::string> names = {kVerifyResults,
                                    kRefresh,
                                    kKeyVerifications,
                                    kKeySigned,
                                    kKeyLastVerified,
                                    kRpcCalls,
                                    kRpcDuration,
                                    kRevision,
                                    kPrimary,
                                    kKeyAge,
                                    kNextTransition,
                                    kChanges,
                                    kChangeFailures,
                                    kStoreRevision,
                                    kStoreStaleness,
                                    kStoreRestarts,
                                    "process_cpu_seconds_total",
                                    "process_threads",
                                    "process_start_time_seconds",
                                    "process_virtual_memory_bytes",
                                    "process_resident_memory_bytes",
                                    "process_open_fds",
                                    "process_max_fds"};
  std::sort(names.begin(), names.end());
  return names;
}

void MetricsCollector::CollectUsage(std::vector<MetricFamily>* out) const {
  MetricFamily results =
      Family(kVerifyResults, "Verify results by keyring and result.", MetricType::Counter);
  MetricFamily refresh =
      Family(kRefresh, "Valid tokens signed by a non-primary key (re-issue recommended).",
             MetricType::Counter);
  MetricFamily per_key =
      Family(kKeyVerifications, "Tokens verified per key (only keys that exist) and result.",
             MetricType::Counter);
  MetricFamily signed_tokens = Family(kKeySigned, "Tokens signed per key.", MetricType::Counter);
  MetricFamily last =
      Family(kKeyLastVerified, "When the key last verified a token as VALID (Unix seconds).",
             MetricType::Gauge);
  for (const KeyringTotals& kr : s_.usage->Totals()) {
    for (int i = 0; i < kVerifyStatusCount; ++i) {
      results.metric.push_back(
          Sample({{"keyring", kr.keyring}, {"result", Name(static_cast<format::VerifyStatus>(i))}},
                 MetricType::Counter, static_cast<double>(kr.results[i])));
    }
    refresh.metric.push_back(Sample({{"keyring", kr.keyring}}, MetricType::Counter,
                                    static_cast<double>(kr.refresh_recommended)));
    for (const KeyTotals& k : kr.keys) {
      const std::string id = absl::StrCat(k.key_id);
      for (int i = 0; i < kVerifyStatusCount; ++i) {
        const auto status = static_cast<format::VerifyStatus>(i);
        // Never per key: these results name no key that exists.
        if (status == format::VerifyStatus::kMalformed ||
            status == format::VerifyStatus::kUnknownKey) {
          continue;
        }
        per_key.metric.push_back(
            Sample({{"keyring", kr.keyring}, {"key_id", id}, {"result", Name(status)}},
                   MetricType::Counter, static_cast<double>(k.results[i])));
      }
      signed_tokens.metric.push_back(Sample({{"keyring", kr.keyring}, {"key_id", id}},
                                            MetricType::Counter,
                                            static_cast<double>(k.signed_tokens)));
      if (k.last_verified != absl::InfinitePast()) {
        last.metric.push_back(Sample({{"keyring", kr.keyring}, {"key_id", id}}, MetricType::Gauge,
                                     static_cast<double>(absl::ToUnixSeconds(k.last_verified))));
      }
    }
  }
  for (MetricFamily* f : {&results, &refresh, &per_key, &signed_tokens, &last}) {
    Add(std::move(*f), out);
  }
}

void MetricsCollector::CollectRpcs(std::vector<MetricFamily>* out) const {
  MetricFamily calls = Family(kRpcCalls, "Finished RPCs by service, method and gRPC status code.",
                              MetricType::Counter);
  MetricFamily latency = Family(
      kRpcDuration,
      "Server-side RPC latency by method (SessionTokens: handler start to status; others: call "
      "start to status sent).",
      MetricType::Histogram);
  for (const MethodTotals& m : s_.rpcs->Totals()) {
    for (int code = 0; code < kStatusCodeCount; ++code) {
      if (m.calls[code] == 0) continue;
      calls.metric.push_back(Sample({{"service", m.service},
                                     {"method", m.method},
                                     {"code", std::string(StatusCodeName(code))}},
                                    MetricType::Counter, static_cast<double>(m.calls[code])));
    }
    ClientMetric h;
    h.label = {{"service", m.service}, {"method", m.method}};
    uint64_t cumulative = 0;
    for (size_t i = 0; i < m.buckets.size(); ++i) {
      cumulative += m.buckets[i];
      h.histogram.bucket.push_back({cumulative, i < kLatencyBuckets.size()
                                                    ? kLatencyBuckets[i]
                                                    : std::numeric_limits<double>::infinity()});
    }
    if (cumulative == 0) continue;
    h.histogram.sample_count = cumulative;
    h.histogram.sample_sum = m.latency_sum_seconds;
    latency.metric.push_back(std::move(h));
  }
  Add(std::move(calls), out);
  Add(std::move(latency), out);
}

void MetricsCollector::CollectKeyrings(std::vector<MetricFamily>* out) const {
  MetricFamily revision =
      Family(kRevision, "Revision of the keyring snapshot served.", MetricType::Gauge);
  MetricFamily primary =
      Family(kPrimary, "Key id of the keyring's primary (signing) key.", MetricType::Gauge);
  MetricFamily age =
      Family(kKeyAge, "Seconds since the key was created, by state.", MetricType::Gauge);
  MetricFamily next =
      Family(kNextTransition,
             "Seconds until the policy's next scheduled transition of the key (negative: overdue).",
             MetricType::Gauge);
  const absl::Time now = s_.now();
  for (const auto& kr : s_.engine->ListKeyrings()) {
    revision.metric.push_back(
        Sample({{"keyring", kr->name()}}, MetricType::Gauge, static_cast<double>(kr->revision())));
    primary.metric.push_back(Sample({{"keyring", kr->name()}}, MetricType::Gauge,
                                    static_cast<double>(kr->primary().id())));
    for (const auto& key : kr->keys()) {
      age.metric.push_back(Sample({{"keyring", kr->name()},
                                   {"key_id", absl::StrCat(key->id())},
                                   {"state", StateName(key->state())}},
                                  MetricType::Gauge,
                                  absl::ToDoubleSeconds(now - key->metadata().created_at)));
    }
    for (const keyring::ScheduledTransition& t : keyring::Scheduled(*kr)) {
      next.metric.push_back(Sample(
          {{"keyring", kr->name()}, {"key_id", absl::StrCat(t.key_id)}, {"operation", t.operation}},
          MetricType::Gauge, absl::ToDoubleSeconds(t.due - now)));
    }
  }
  for (MetricFamily* f : {&revision, &primary, &age, &next}) Add(std::move(*f), out);
}

void MetricsCollector::CollectChanges(std::vector<MetricFamily>* out) const {
  MetricFamily changes =
      Family(kChanges, "Keyring changes applied (admin calls and the scheduler), by operation.",
             MetricType::Counter);
  for (const UsageAuditLog::Change& c : s_.changes->Changes()) {
    changes.metric.push_back(Sample({{"keyring", c.keyring}, {"operation", c.operation}},
                                    MetricType::Counter, static_cast<double>(c.count)));
  }
  MetricFamily failures =
      Family(kChangeFailures, "Keyring changes that failed, by operation.", MetricType::Counter);
  for (const UsageAuditLog::Change& c : s_.changes->Failures()) {
    failures.metric.push_back(
        Sample({{"operation", c.operation}}, MetricType::Counter, static_cast<double>(c.count)));
  }
  Add(std::move(changes), out);
  Add(std::move(failures), out);
}

void MetricsCollector::CollectStore(std::vector<MetricFamily>* out) const {
  const StoreHealth h = s_.store_health();
  MetricFamily rev = Family(kStoreRevision, "Store revision of the snapshot this replica serves.",
                            MetricType::Gauge);
  rev.metric.push_back(Sample({}, MetricType::Gauge, static_cast<double>(h.loaded_revision)));
  MetricFamily stale =
      Family(kStoreStaleness, "Seconds since this replica last knew its keyrings were current.",
             MetricType::Gauge);
  stale.metric.push_back(Sample({}, MetricType::Gauge, h.staleness_seconds));
  MetricFamily restarts =
      Family(kStoreRestarts, "Times the store watch was restarted.", MetricType::Counter);
  restarts.metric.push_back(Sample({}, MetricType::Counter, static_cast<double>(h.watch_restarts)));
  out->push_back(std::move(rev));
  out->push_back(std::move(stale));
  out->push_back(std::move(restarts));
}

std::vector<MetricFamily> MetricsCollector::Collect() const {
  std::vector<MetricFamily> out;
  if (s_.rpcs != nullptr) CollectRpcs(&out);
  if (s_.usage != nullptr) CollectUsage(&out);
  if (s_.engine != nullptr) CollectKeyrings(&out);
  if (s_.changes != nullptr) CollectChanges(&out);
  if (s_.store_health) CollectStore(&out);
  if (s_.process) {
    for (MetricFamily& f : ProcessFamilies()) out.push_back(std::move(f));
  }
  return out;
}

std::string Serialize(const std::vector<MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace sessiontoken::metrics
