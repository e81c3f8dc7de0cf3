#include "server/tools/tool_store.h"

#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "server/store/etcd_store.h"
#include "server/store/file_store.h"

ABSL_FLAG(std::string, etcd_endpoints, "", "etcd members, host:port,host:port,...");
ABSL_FLAG(std::string, etcd_prefix, "/sessiontoken/", "Key prefix of sessiontoken's records");
ABSL_FLAG(std::string, etcd_ca_file, "", "PEM CA bundle for etcd TLS (empty: plaintext)");
ABSL_FLAG(std::string, etcd_cert_file, "", "PEM client certificate for etcd mutual TLS");
ABSL_FLAG(std::string, etcd_key_file, "", "PEM client key for etcd mutual TLS");
ABSL_FLAG(std::string, etcd_user, "", "etcd user (empty: no authentication)");
ABSL_FLAG(std::string, etcd_password_file, "", "File holding the etcd user's password");

namespace sessiontoken::store {
namespace {

absl::StatusOr<EtcdOptions> EtcdOptionsFromFlags() {
  EtcdOptions o;
  o.endpoints = absl::StrSplit(absl::GetFlag(FLAGS_etcd_endpoints), ',', absl::SkipEmpty());
  o.prefix = absl::GetFlag(FLAGS_etcd_prefix);
  o.ca_file = absl::GetFlag(FLAGS_etcd_ca_file);
  o.cert_file = absl::GetFlag(FLAGS_etcd_cert_file);
  o.key_file = absl::GetFlag(FLAGS_etcd_key_file);
  o.username = absl::GetFlag(FLAGS_etcd_user);
  const std::string password_file = absl::GetFlag(FLAGS_etcd_password_file);
  if (!password_file.empty()) {
    absl::StatusOr<crypto::SecretBytes> pw = ReadEtcdPassword(password_file);
    if (!pw.ok()) return pw.status();
    o.password = *std::move(pw);
  }
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& spec) {
  if (absl::StartsWith(spec, "file:") && spec.size() > 5) {
    auto s = FileStore::Open(spec.substr(5));
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(*std::move(s));
  }
  if (spec == "etcd") {
    absl::StatusOr<EtcdOptions> o = EtcdOptionsFromFlags();
    if (!o.ok()) return o.status();
    auto s = EtcdStore::New(*std::move(o));
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(*std::move(s));
  }
  return absl::InvalidArgumentError("store '" + spec + "': expected file:<data_dir> or etcd");
}

}  // namespace sessiontoken::store
