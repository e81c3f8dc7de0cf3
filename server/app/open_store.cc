#include "server/app/open_store.h"

#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::app {

absl::StatusOr<store::EtcdOptions> EtcdOptionsFor(const EtcdSettings& etcd) {
  store::EtcdOptions o;
  o.endpoints = etcd.endpoints;
  o.prefix = etcd.prefix;
  o.ca_file = etcd.ca_file;
  o.cert_file = etcd.cert_file;
  o.key_file = etcd.key_file;
  o.username = etcd.username;
  if (!etcd.password_file.empty()) {
    absl::StatusOr<crypto::SecretBytes> pw = store::ReadEtcdPassword(etcd.password_file);
    if (!pw.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("etcd_password_file: ", pw.status().message()));
    o.password = *std::move(pw);
  }
  return o;
}

std::string ReplicaId(const EtcdSettings& etcd) {
  if (!etcd.replica_id.empty()) return etcd.replica_id;
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "replica";
  return host;
}

}  // namespace sessiontoken::app
