// sessiontoken-store-copy: copies sealed keyrings between stores, e.g. a file data dir into
// etcd (migration) or etcd into a data dir (backup). Refuses to overwrite existing keyrings
// unless --overwrite. Keyrings stay sealed: no KEK is read.
//   sessiontoken-store-copy --from=file:/var/lib/sessiontoken --to=etcd
//       --etcd_endpoints=10.0.0.1:2379,10.0.0.2:2379 [--etcd_prefix=/sessiontoken/]
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/store/etcd_store.h"
#include "server/store/file_store.h"
#include "server/store/store_copy.h"

ABSL_FLAG(std::string, from, "", "Source store: file:<data_dir> or etcd");
ABSL_FLAG(std::string, to, "", "Destination store: file:<data_dir> or etcd");
ABSL_FLAG(bool, overwrite, false, "Replace keyrings that already exist in the destination");
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

int Run() {
  absl::StatusOr<std::unique_ptr<Store>> from = OpenStore(absl::GetFlag(FLAGS_from));
  if (!from.ok()) {
    std::fprintf(stderr, "--from: %s\n", std::string(from.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Store>> to = OpenStore(absl::GetFlag(FLAGS_to));
  if (!to.ok()) {
    std::fprintf(stderr, "--to: %s\n", std::string(to.status().message()).c_str());
    return 2;
  }
  CopyOptions options;
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  absl::StatusOr<CopyReport> report = CopyKeyrings(**from, **to, options);
  if (!report.ok()) {
    std::fprintf(stderr, "copy failed: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf("created: [%s]\nreplaced: [%s]\n", absl::StrJoin(report->created, ",").c_str(),
              absl::StrJoin(report->replaced, ",").c_str());
  return 0;
}

}  // namespace
}  // namespace sessiontoken::store

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Copies sealed keyrings between stores: --from=file:<dir>|etcd --to=file:<dir>|etcd");
  absl::ParseCommandLine(argc, argv);
  return sessiontoken::store::Run();
}
