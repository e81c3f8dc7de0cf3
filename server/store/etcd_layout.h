// EtcdLayout: where sessiontoken's records live under the etcd prefix and how their values
// are framed, so a foreign or damaged value is recognised rather than handed on:
//   <prefix>keyrings/<name>        "STE1\n" + the stored record (a sealed keyring, or another
//                                  sealed record such as "_mark.<keyring>"; opaque here)
//   <prefix>presence/<replica_id>  "STP1 loaded_revision=<n>\n", on the replica's lease
#ifndef SESSIONTOKEN_SERVER_STORE_ETCD_LAYOUT_H_
#define SESSIONTOKEN_SERVER_STORE_ETCD_LAYOUT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "etcd/mvccpb/kv.pb.h"
#include "server/store/replicated_store.h"

namespace sessiontoken::store {

class EtcdLayout {
 public:
  // InvalidArgument unless `prefix` starts and ends with '/'.
  static absl::StatusOr<EtcdLayout> New(std::string prefix);

  const std::string& prefix() const { return prefix_; }
  const std::string& keyrings_prefix() const { return keyrings_; }
  const std::string& presence_prefix() const { return presence_; }
  std::string KeyringKey(absl::string_view name) const { return keyrings_ + std::string(name); }
  std::string PresenceKey(absl::string_view id) const { return presence_ + std::string(id); }

  // The end of the key range that holds every key starting with `prefix`.
  static std::string RangeEnd(absl::string_view prefix);

  // A stored keyring (watch event or load) from an etcd key-value under keyrings_prefix().
  KeyringRecord ToRecord(const mvccpb::KeyValue& kv) const;
  // The record name in a key under keyrings_prefix(); DataLoss when it names none.
  absl::StatusOr<std::string> KeyringName(absl::string_view key) const;

  static std::string EncodeKeyring(absl::string_view blob);
  static std::string EncodePresence(int64_t loaded_revision);
  // DataLoss when the value is not a presence record.
  static absl::StatusOr<int64_t> DecodePresence(absl::string_view value);
  // Store record names (keyring names and the engine's other records, e.g. "_mark.shop"):
  // 1-255 characters of [a-z0-9._-], not starting with '.'. InvalidArgument otherwise.
  static absl::Status ValidateRecordName(absl::string_view name);
  // Replica ids: 1-128 characters of [A-Za-z0-9._-].
  static absl::Status ValidateReplicaId(absl::string_view id);

 private:
  explicit EtcdLayout(std::string prefix)
      : prefix_(prefix), keyrings_(prefix + "keyrings/"), presence_(prefix + "presence/") {}

  std::string prefix_;
  std::string keyrings_;
  std::string presence_;
};

}  // namespace sessiontoken::store

#endif  // SESSIONTOKEN_SERVER_STORE_ETCD_LAYOUT_H_
