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
#include "absl/strings/str_join.h"
#include "server/store/store_copy.h"
#include "server/tools/tool_store.h"

ABSL_FLAG(std::string, from, "", "Source store: file:<data_dir> or etcd");
ABSL_FLAG(std::string, to, "", "Destination store: file:<data_dir> or etcd");
ABSL_FLAG(bool, overwrite, false, "Replace keyrings that already exist in the destination");
namespace sessiontoken::store {
namespace {

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
