// UsageSampler: calls KeyUsageRecorder::Sample once a minute (real time) on its own thread
// while it lives, so that GetKeyUsage can tell the last hour and day apart.
#ifndef SESSIONTOKEN_SERVER_METRICS_SAMPLER_H_
#define SESSIONTOKEN_SERVER_METRICS_SAMPLER_H_

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/metrics/key_usage.h"

namespace sessiontoken::metrics {

class UsageSampler {
 public:
  // `recorder` must outlive the sampler.
  explicit UsageSampler(KeyUsageRecorder* recorder, absl::Duration interval = absl::Minutes(1));
  ~UsageSampler();  // stops and joins the thread
  UsageSampler(const UsageSampler&) = delete;
  UsageSampler& operator=(const UsageSampler&) = delete;

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace sessiontoken::metrics

#endif  // SESSIONTOKEN_SERVER_METRICS_SAMPLER_H_
