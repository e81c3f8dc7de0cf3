// RpcStats: calls by service, method and status code, and latency histograms by method,
// for a fixed set of methods named up front (any other method path counts as
// service="unknown", method="unknown": a client cannot create label values). Recording is
// lock-free (relaxed atomics); gRPC-free, fed by the service layer's interceptor.
#ifndef SESSIONTOKEN_SERVER_METRICS_RPC_STATS_H_
#define SESSIONTOKEN_SERVER_METRICS_RPC_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sessiontoken::metrics {

// gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED).
inline constexpr int kStatusCodeCount = 17;
// Upper bounds of the latency buckets, in seconds (then +Inf).
inline constexpr std::array<double, 16> kLatencyBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};

// The name of a gRPC status code ("OK", "INVALID_ARGUMENT"...).
absl::string_view StatusCodeName(int code);

struct MethodTotals {
  std::string service;                                         // "sessiontoken.v1.SessionTokens"
  std::string method;                                          // "Verify"
  std::array<uint64_t, kStatusCodeCount> calls{};              // by status code
  std::array<uint64_t, kLatencyBuckets.size() + 1> buckets{};  // non-cumulative; last: +Inf
  double latency_sum_seconds = 0;
  uint64_t count() const;
};

class RpcStats {
 public:
  // `methods`: full method paths, "/package.Service/Method".
  explicit RpcStats(const std::vector<std::string>& methods);
  ~RpcStats();
  RpcStats(const RpcStats&) = delete;
  RpcStats& operator=(const RpcStats&) = delete;

  // The index of `path` (the "unknown" row when it was not named at construction).
  int Index(absl::string_view path) const;
  // The index of the "unknown" row.
  int unknown_index() const { return static_cast<int>(rows_.size()) - 1; }
  // One finished call of method `index` with gRPC status `code`, which took `latency`.
  void Record(int index, int code, absl::Duration latency);
  // Totals of every method, in the order named (the "unknown" row last).
  std::vector<MethodTotals> Totals() const;

 private:
  struct Row;
  std::vector<std::unique_ptr<Row>> rows_;  // fixed after construction
  absl::flat_hash_map<std::string, int> index_;
};

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_RPC_STATS_H_
