#include "server/metrics/rpc_stats.h"

#include <algorithm>

namespace sessiontoken::metrics {
namespace {
constexpr absl::string_view kCodeNames[kStatusCodeCount] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
}  // namespace

absl::string_view StatusCodeName(int code) {
  return code >= 0 && code < kStatusCodeCount ? kCodeNames[code] : "UNKNOWN";
}

uint64_t MethodTotals::count() const {
  uint64_t n = 0;
  for (uint64_t c : calls) n += c;
  return n;
}

struct RpcStats::Row {
  std::string service, method;
  std::array<std::atomic<uint64_t>, kStatusCodeCount> calls{};
  std::array<std::atomic<uint64_t>, kLatencyBuckets.size() + 1> buckets{};
  std::atomic<uint64_t> latency_sum_ns{0};
};

RpcStats::RpcStats(const std::vector<std::string>& methods) {
  for (const std::string& path : methods) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0 || index_.contains(path)) continue;
    auto row = std::make_unique<Row>();
    row->service = path.substr(1, slash - 1);
    row->method = path.substr(slash + 1);
    index_[path] = static_cast<int>(rows_.size());
    rows_.push_back(std::move(row));
  }
  auto unknown = std::make_unique<Row>();
  unknown->service = unknown->method = "unknown";
  rows_.push_back(std::move(unknown));
}

RpcStats::~RpcStats() = default;

int RpcStats::Index(absl::string_view path) const {
  auto it = index_.find(path);
  return it == index_.end() ? static_cast<int>(rows_.size()) - 1 : it->second;
}

void RpcStats::Record(int index, int code, absl::Duration latency) {
  if (index < 0 || index >= static_cast<int>(rows_.size())) return;
  Row& r = *rows_[index];
  if (code < 0 || code >= kStatusCodeCount) code = 2;  // UNKNOWN
  r.calls[code].fetch_add(1, std::memory_order_relaxed);
  const double s = absl::ToDoubleSeconds(latency);
  const size_t b =
      std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), s) - kLatencyBuckets.begin();
  r.buckets[b].fetch_add(1, std::memory_order_relaxed);
  const int64_t ns = absl::ToInt64Nanoseconds(latency);
  r.latency_sum_ns.fetch_add(ns > 0 ? static_cast<uint64_t>(ns) : 0, std::memory_order_relaxed);
}

std::vector<MethodTotals> RpcStats::Totals() const {
  std::vector<MethodTotals> out;
  out.reserve(rows_.size());
  for (const auto& r : rows_) {
    MethodTotals t;
    t.service = r->service;
    t.method = r->method;
    for (int i = 0; i < kStatusCodeCount; ++i)
      t.calls[i] = r->calls[i].load(std::memory_order_relaxed);
    for (size_t i = 0; i < t.buckets.size(); ++i) {
      t.buckets[i] = r->buckets[i].load(std::memory_order_relaxed);
    }
    t.latency_sum_seconds =
        static_cast<double>(r->latency_sum_ns.load(std::memory_order_relaxed)) / 1e9;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace sessiontoken::metrics
