// The stores the offline tools (sessiontoken-store-copy, sessiontoken-restore) open, and the
// etcd connection flags they share (--etcd_endpoints, --etcd_prefix, TLS, user/password).
#ifndef SESSIONTOKEN_SERVER_TOOLS_TOOL_STORE_H_
#define SESSIONTOKEN_SERVER_TOOLS_TOOL_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/store/store.h"

namespace sessiontoken::store {

// "file:<data_dir>" (takes the data dir's lock: refused while a server runs on it) or
// "etcd" (the --etcd_* flags).
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& spec);

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_TOOLS_TOOL_STORE_H_
