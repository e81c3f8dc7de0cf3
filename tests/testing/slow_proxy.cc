#include "tests/testing/slow_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sessiontoken::testing {
namespace {

constexpr int kPollMs = 50;  // how often loops look at the stop flag

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Writes all of `data`; false once the peer is gone.
bool WriteAll(int fd, const char* data, ssize_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, static_cast<size_t>(n), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= w;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SlowProxy>> SlowProxy::Start(int upstream_port,
                                                            absl::Duration delay) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in a = Loopback(0);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("proxy listen: ", std::strerror(e)));
  }
  std::unique_ptr<SlowProxy> p(new SlowProxy(fd, ntohs(a.sin_port), upstream_port, delay));
  p->acceptor_ = std::thread([raw = p.get()] { raw->AcceptLoop(); });
  return p;
}

SlowProxy::~SlowProxy() {
  stop_.store(true);
  acceptor_.join();
  ::close(listen_fd_);
  absl::MutexLock lock(&mu_);
  for (std::thread& t : relays_) t.join();
}

std::string SlowProxy::address() const { return absl::StrCat("127.0.0.1:", port_); }

void SlowProxy::AcceptLoop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, kPollMs) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    accepted_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    relays_.emplace_back([this, client] { Relay(client); });
  }
}

void SlowProxy::Relay(int client) {
  const absl::Time until = absl::Now() + delay_;
  while (!stop_.load() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(kPollMs) / 5);
  const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in a = Loopback(upstream_port_);
  if (stop_.load() || upstream < 0 ||
      ::connect(upstream, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
    if (upstream >= 0) ::close(upstream);
    ::close(client);
    return;
  }
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  char buf[16384];
  bool open = true;
  while (open && !stop_.load()) {
    if (::poll(fds, 2, kPollMs) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t n = ::recv(fds[i].fd, buf, sizeof(buf), 0);
      open = n > 0 && WriteAll(fds[1 - i].fd, buf, n);
    }
  }
  ::close(upstream);
  ::close(client);
}

}  // namespace sessiontoken::testing
