// sessiontoken-store-copy, the real binary: file data dir -> etcd -> file, refusal to
// overwrite (exit 1, nothing written), --overwrite, a data dir in use, bad arguments.
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/etcd_store.h"
#include "server/store/file_store.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::store {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::MakeTempDir;
using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Result RunTool(const std::string& args) {
  Result r;
  const std::string cmd = absl::StrCat(SESSIONTOKEN_STORE_COPY, " ", args, " 2>&1");
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(StoreCopyToolTest, MigratesAndBacksUpWithoutOverwritingUnlessTold) {
  auto etcd = EtcdCluster::Start(1);
  ASSERT_THAT(etcd, IsOk());
  const std::string etcd_flags = absl::StrCat(
      "--etcd_endpoints=", absl::StrJoin((*etcd)->endpoints(), ","), " --etcd_prefix=/migrated/");
  const std::string src = MakeTempDir();
  {
    auto file = FileStore::Open(src);
    ASSERT_THAT(file, IsOk());
    ASSERT_THAT((*file)->Put("shop", "sealed shop", 0), IsOk());
    ASSERT_THAT((*file)->Put("admin", "sealed admin", 0), IsOk());
  }
  Result first = RunTool(absl::StrCat("--from=file:", src, " --to=etcd ", etcd_flags));
  EXPECT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("created: [admin,shop]"));

  Result again = RunTool(absl::StrCat("--from=file:", src, " --to=etcd ", etcd_flags));
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_THAT(again.output, HasSubstr("already holds keyrings [admin,shop]"));

  Result forced = RunTool(absl::StrCat("--from=file:", src, " --to=etcd --overwrite ", etcd_flags));
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_THAT(forced.output, HasSubstr("replaced: [admin,shop]"));

  const std::string backup = MakeTempDir();
  Result back = RunTool(absl::StrCat("--from=etcd --to=file:", backup, " ", etcd_flags));
  EXPECT_EQ(back.exit_code, 0) << back.output;
  auto restored = FileStore::Open(backup);
  ASSERT_THAT(restored, IsOk());
  EXPECT_EQ((*restored)->Get("shop")->data, "sealed shop");
  EXPECT_EQ((*restored)->Get("admin")->data, "sealed admin");

  // The backup dir is locked by `restored` (as by a running server): refused.
  Result busy = RunTool(absl::StrCat("--from=etcd --to=file:", backup, " ", etcd_flags));
  EXPECT_EQ(busy.exit_code, 2) << busy.output;
  EXPECT_THAT(busy.output, HasSubstr("in use"));

  Result bad = RunTool("--from=s3://bucket --to=etcd");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  (*etcd)->Kill(0);
  Result down = RunTool(absl::StrCat("--from=etcd --to=file:", MakeTempDir(), " ", etcd_flags));
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_THAT(down.output, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace sessiontoken::store
