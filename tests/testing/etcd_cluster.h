// EtcdCluster: real etcd processes for tests. Starts 1..n members on 127.0.0.1 with free
// ports and a fresh temporary data directory, waits (bounded) until every member answers
// and a leader exists, and on destruction kills them and removes the directory. Members die
// with the test process (PR_SET_PDEATHSIG). The binary is $ETCD_BIN or /usr/bin/etcd.
#ifndef SESSIONTOKEN_TESTS_TESTING_ETCD_CLUSTER_H_
#define SESSIONTOKEN_TESTS_TESTING_ETCD_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sessiontoken::testing {

// PEM files of a throwaway test PKI (CA, server cert for IP 127.0.0.1, client cert).
struct EtcdTlsFiles {
  std::string ca_file, server_cert, server_key, client_cert, client_key;
  std::string other_ca_file;  // a CA that signed nothing etcd uses
};

struct EtcdClusterOptions {
  int members = 1;
  absl::Duration timeout = absl::Seconds(30);
  std::vector<std::string> extra_args;  // passed to every member
  // Serve clients over TLS and require client certificates signed by the test CA.
  bool tls = false;
};

class EtcdCluster {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      int members, absl::Duration timeout = absl::Seconds(30));
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(const EtcdClusterOptions& options);
  ~EtcdCluster();

  // The test PKI (only with options.tls).
  const EtcdTlsFiles& tls() const { return tls_; }
  // Creates user root with `password` and turns etcd authentication on (runs etcdctl).
  absl::Status EnableAuth(const std::string& password);

  int size() const { return static_cast<int>(members_.size()); }
  // host:port of member i's client URL, and of every member.
  std::string endpoint(int i) const;
  std::vector<std::string> endpoints() const;

  void Kill(int i);    // SIGKILL and reap
  void Pause(int i);   // SIGSTOP: the process hangs with its sockets open
  void Resume(int i);  // SIGCONT
  // Starts a killed member again on its data directory and ports; waits until it answers.
  absl::Status Restart(int i, absl::Duration timeout = absl::Seconds(20));
  // Index of the member that currently leads (asks the running members).
  absl::StatusOr<int> Leader();
  // Waits until every running member answers Status and reports a leader.
  absl::Status WaitHealthy(absl::Duration timeout);

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = -1;
  };
  EtcdCluster() = default;
  absl::Status Spawn(int i);
  std::string InitialCluster() const;

  absl::Status MakePki();
  std::string Scheme() const { return options_.tls ? "https" : "http"; }

  EtcdClusterOptions options_;
  EtcdTlsFiles tls_;
  std::string dir_;
  std::vector<Member> members_;
};

}  // namespace sessiontoken::testing

#endif  // SESSIONTOKEN_TESTS_TESTING_ETCD_CLUSTER_H_
