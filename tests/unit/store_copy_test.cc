// CopyKeyrings: file data dir -> etcd (migration) and back (backup) with real sealed
// keyrings that still open with the same KEK; refusals that write nothing.
#include "server/store/store_copy.h"

#include <fstream>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/keyring/keyring.h"
#include "server/store/etcd_store.h"
#include "server/store/file_store.h"
#include "server/store/sealer.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::store {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::IsOkAndHolds;
using ::sessiontoken::testing::MakeTempDir;
using ::sessiontoken::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::unique_ptr<EtcdStore> OpenEtcd(const EtcdCluster& etcd) {
  EtcdOptions o;
  o.endpoints = etcd.endpoints();
  auto s = EtcdStore::New(std::move(o));
  return s.ok() ? *std::move(s) : nullptr;
}

TEST(StoreCopyTest, FileToEtcdAndBackKeepsSealedKeyringsOpenable) {
  auto etcd = EtcdCluster::Start(1);
  ASSERT_THAT(etcd, IsOk());
  auto sealer = Sealer::New(crypto::RandomSecret(32));
  ASSERT_THAT(sealer, IsOk());
  auto file = FileStore::Open(MakeTempDir());
  ASSERT_THAT(file, IsOk());
  std::map<std::string, std::string> primary_ids;
  for (const char* name : {"admin", "shop"}) {
    auto kr = keyring::Keyring::Create(name, absl::Now());
    ASSERT_THAT(kr, IsOk());
    auto blob = (*sealer)->Seal(**kr);
    ASSERT_THAT(blob, IsOk());
    ASSERT_THAT((*file)->Put(name, *blob, 0), IsOk());
    primary_ids[name] = std::to_string((*kr)->primary().id());
  }
  auto into_etcd = OpenEtcd(**etcd);
  auto report = CopyKeyrings(**file, *into_etcd, {});
  ASSERT_THAT(report, IsOk());
  EXPECT_THAT(report->created, ElementsAre("admin", "shop"));
  EXPECT_THAT(report->replaced, IsEmpty());

  auto backup = FileStore::Open(MakeTempDir());
  ASSERT_THAT(backup, IsOk());
  ASSERT_THAT(CopyKeyrings(*OpenEtcd(**etcd), **backup, {}), IsOk());
  for (const char* name : {"admin", "shop"}) {
    auto original = (*file)->Get(name);
    auto copied = (*backup)->Get(name);
    ASSERT_THAT(copied, IsOk());
    EXPECT_EQ(copied->data, original->data);  // byte for byte: sealed, never opened
    auto opened = (*sealer)->Open(name, copied->data);
    ASSERT_THAT(opened, IsOk());
    EXPECT_EQ(std::to_string((*opened)->primary().id()), primary_ids[name]);
  }
}

TEST(StoreCopyTest, RefusesToOverwriteAndWritesNothing) {
  MemoryStore from, to;
  ASSERT_THAT(from.Put("admin", "a", 0), IsOk());
  ASSERT_THAT(from.Put("shop", "new shop", 0), IsOk());
  ASSERT_THAT(to.Put("shop", "existing shop", 0), IsOk());
  EXPECT_THAT(CopyKeyrings(from, to, {}), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                   "[shop]; nothing copied (pass --overwrite"));
  EXPECT_THAT(to.List(), IsOkAndHolds(ElementsAre("shop")));
  EXPECT_EQ(to.Get("shop")->data, "existing shop");

  auto report = CopyKeyrings(from, to, {.overwrite = true});
  ASSERT_THAT(report, IsOk());
  EXPECT_THAT(report->created, ElementsAre("admin"));
  EXPECT_THAT(report->replaced, ElementsAre("shop"));
  EXPECT_EQ(to.Get("shop")->data, "new shop");
}

TEST(StoreCopyTest, UnreadableSourceOrDestinationWritesNothing) {
  const std::string dir = MakeTempDir();
  auto file = FileStore::Open(dir);
  ASSERT_THAT(file, IsOk());
  ASSERT_THAT((*file)->Put("good", "g", 0), IsOk());
  { std::ofstream((*file)->PathOf("bad")) << "garbage"; }
  MemoryStore to;
  EXPECT_THAT(CopyKeyrings(**file, to, {}),
              StatusIs(absl::StatusCode::kDataLoss, "nothing copied"));
  EXPECT_THAT(to.List(), IsOkAndHolds(IsEmpty()));

  MemoryStore from;
  ASSERT_THAT(from.Put("bad", "b", 0), IsOk());
  ASSERT_THAT(from.Put("aaa", "a", 0), IsOk());
  EXPECT_THAT(CopyKeyrings(from, **file, {.overwrite = true}),
              StatusIs(absl::StatusCode::kDataLoss, "destination keyring bad"));
  EXPECT_THAT((*file)->Get("aaa"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(sessiontoken::testing::ReadFile((*file)->PathOf("bad")), "garbage");
}

}  // namespace
}  // namespace sessiontoken::store
