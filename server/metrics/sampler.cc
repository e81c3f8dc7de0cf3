#include "server/metrics/sampler.h"

namespace sessiontoken::metrics {

UsageSampler::UsageSampler(KeyUsageRecorder* recorder, absl::Duration interval) {
  thread_ = std::thread([this, recorder, interval] {
    do {
      recorder->Sample(absl::Now());
    } while (!stop_.WaitForNotificationWithTimeout(interval));
  });
}

UsageSampler::~UsageSampler() {
  stop_.Notify();
  thread_.join();
}

}  // namespace sessiontoken::metrics
