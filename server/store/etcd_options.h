// EtcdOptions: resolved settings for the etcd store (flags/config are parsed elsewhere into
// this plain struct). Every default is defined here once.
#ifndef SESSIONTOKEN_SERVER_STORE_ETCD_OPTIONS_H_
#define SESSIONTOKEN_SERVER_STORE_ETCD_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/crypto/secret_bytes.h"

namespace sessiontoken::store {

struct EtcdOptions {
  // host:port of each etcd member's client URL; calls fail over between them in order.
  std::vector<std::string> endpoints;
  // Every key sessiontoken writes lives under this prefix (must start and end with '/').
  std::string prefix = "/sessiontoken/";
  // Bound on one store operation across every endpoint and retry: past it the call fails
  // with UNAVAILABLE (naming the endpoints).
  absl::Duration request_timeout = absl::Seconds(5);
  // Bound on one attempt against one endpoint (a hung member costs at most this much).
  absl::Duration attempt_timeout = absl::Seconds(2);
  // How often a watch asks etcd for progress; a watch stream silent for three intervals
  // (a hung member) is dropped and resumed on another endpoint.
  absl::Duration watch_progress_interval = absl::Seconds(2);

  // TLS: PEM files. With ca_file empty the connection is plaintext (loopback/tests only).
  // cert_file + key_file add a client certificate (mutual TLS).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // etcd user/password authentication (etcd's Auth.Authenticate token is sent with every
  // call and renewed when etcd reports it invalid). Empty username: no authentication.
  std::string username;
  crypto::SecretBytes password;
};

// The etcd password from `path` (one line; a trailing newline is not part of it), read
// straight into SecretBytes. InvalidArgument naming the file when it cannot be read.
absl::StatusOr<crypto::SecretBytes> ReadEtcdPassword(const std::string& path);

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_ETCD_OPTIONS_H_
