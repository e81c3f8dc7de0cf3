// The store the settings name: the file store (data_dir) or the etcd store, with its
// connection options (the etcd password read from its file) and this replica's id.
#ifndef SESSIONTOKEN_SERVER_APP_OPEN_STORE_H_
#define SESSIONTOKEN_SERVER_APP_OPEN_STORE_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/app/settings.h"
#include "server/store/etcd_options.h"

namespace sessiontoken::app {

// store::EtcdOptions from the settings; InvalidArgument when the password file is unreadable.
absl::StatusOr<store::EtcdOptions> EtcdOptionsFor(const EtcdSettings& etcd);

// settings.replica_id, or the host name when it is empty (a pod's name on Kubernetes).
std::string ReplicaId(const EtcdSettings& etcd);

}  // namespace sessiontoken::app

#endif  // SESSIONTOKEN_SERVER_APP_OPEN_STORE_H_
