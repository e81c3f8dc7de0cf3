// A TCP proxy on 127.0.0.1 that holds every new connection for a while before it connects
// upstream and relays bytes both ways: a server that is slow to answer a connection (busy,
// just restarted, far away), for tests of connection timeouts.
#ifndef SESSIONTOKEN_TESTS_TESTING_SLOW_PROXY_H_
#define SESSIONTOKEN_TESTS_TESTING_SLOW_PROXY_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sessiontoken::testing {

class SlowProxy {
 public:
  // Listens on 127.0.0.1 (a port of the kernel's choice) and relays to `upstream_port` on
  // 127.0.0.1, each connection only after `delay`.
  static absl::StatusOr<std::unique_ptr<SlowProxy>> Start(int upstream_port, absl::Duration delay);
  ~SlowProxy();  // closes every connection and joins every thread

  // host:port clients connect to.
  std::string address() const;
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }

 private:
  SlowProxy(int listen_fd, int port, int upstream_port, absl::Duration delay)
      : listen_fd_(listen_fd), port_(port), upstream_port_(upstream_port), delay_(delay) {}
  void AcceptLoop();
  void Relay(int client_fd);

  const int listen_fd_;
  const int port_;
  const int upstream_port_;
  const absl::Duration delay_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> relays_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sessiontoken::testing

#endif  // SESSIONTOKEN_TESTS_TESTING_SLOW_PROXY_H_
