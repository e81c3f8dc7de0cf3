#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/store/file_store.h"
#include "server/store/sealer.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::store {
namespace {

using ::sessiontoken::testing::IsOk;
using ::testing::Not;

using ::sessiontoken::testing::MakeTempDir;
using ::sessiontoken::testing::ReadFile;

void CheckCas(Store& s) {
  auto v1 = s.Put("a", "one", 0);
  ASSERT_THAT(v1, IsOk()) << v1.status();
  EXPECT_TRUE(absl::IsAborted(s.Put("a", "again", 0).status()));  // already exists
  auto v2 = s.Put("a", "two", *v1);
  ASSERT_THAT(v2, IsOk());
  EXPECT_GT(*v2, *v1);
  EXPECT_TRUE(absl::IsAborted(s.Put("a", "stale", *v1).status()));
  auto got = s.Get("a");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->data, "two");
  EXPECT_EQ(got->version, *v2);
  EXPECT_TRUE(absl::IsNotFound(s.Get("b").status()));
  ASSERT_THAT(s.Put("b", std::string("\0bin\xff", 5), 0), IsOk());
  EXPECT_EQ(s.Get("b")->data, std::string("\0bin\xff", 5));
  EXPECT_EQ(*s.List(), (std::vector<std::string>{"a", "b"}));
}

TEST(MemoryStoreTest, CompareAndSwap) {
  MemoryStore s;
  CheckCas(s);
}

TEST(FileStoreTest, CompareAndSwapAndPersistence) {
  std::string dir = MakeTempDir();
  {
    auto s = FileStore::Open(dir);
    ASSERT_THAT(s, IsOk()) << s.status();
    CheckCas(**s);
    struct stat st;
    ASSERT_EQ(::stat((*s)->PathOf("a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  auto s = FileStore::Open(dir);
  ASSERT_THAT(s, IsOk());
  auto got = (*s)->Get("a");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->data, "two");
  EXPECT_EQ(got->version, 2u);
}

TEST(FileStoreTest, SecondOpenOfSameDirectoryIsRefused) {
  std::string dir = MakeTempDir();
  auto first = FileStore::Open(dir);
  ASSERT_THAT(first, IsOk());
  auto second = FileStore::Open(dir);
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  first->reset();
  EXPECT_THAT(FileStore::Open(dir), IsOk());
}

TEST(FileStoreTest, CorruptFileIsReportedAndNeverOverwritten) {
  std::string dir = MakeTempDir();
  auto s = FileStore::Open(dir);
  ASSERT_THAT(s, IsOk());
  const std::string path = (*s)->PathOf("bad");
  { std::ofstream(path) << "garbage"; }
  EXPECT_TRUE(absl::IsDataLoss((*s)->Get("bad").status()));
  EXPECT_THAT((*s)->Put("bad", "new", 0), Not(IsOk()));
  EXPECT_THAT((*s)->Put("bad", "new", 1), Not(IsOk()));
  EXPECT_EQ(ReadFile(path), "garbage");
}

TEST(FileStoreTest, LeftoverTempFilesAreIgnoredAndRemoved) {
  std::string dir = MakeTempDir();
  {
    auto s = FileStore::Open(dir);
    ASSERT_THAT((*s)->Put("k", "v", 0), IsOk());
  }
  const std::string tmp = dir + "/keyrings/k.keyring.tmp.123";
  { std::ofstream(tmp) << "half-written"; }
  auto s = FileStore::Open(dir);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(*(*s)->List(), (std::vector<std::string>{"k"}));
  EXPECT_EQ(::access(tmp.c_str(), F_OK), 0);  // opening alone modifies nothing
  EXPECT_EQ((*s)->RemoveTempFiles(), 1);
  EXPECT_NE(::access(tmp.c_str(), F_OK), 0);
  EXPECT_EQ((*s)->Get("k")->data, "v");
}

TEST(KekTest, ParsesHexBase64AndRaw) {
  const std::string hex(64, 'a');
  auto k1 = ParseKek(hex + "\n");
  ASSERT_THAT(k1, IsOk());
  EXPECT_EQ(k1->view(), std::string(32, '\xaa'));
  auto k2 = ParseKek("qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo=");
  ASSERT_THAT(k2, IsOk());
  EXPECT_EQ(k2->view(), std::string(32, '\xaa'));
  // 32 raw bytes look like a passphrase or a truncated hex KEK: refused.
  EXPECT_THAT(ParseKek(std::string(32, '\x01')), Not(IsOk()));
  EXPECT_THAT(ParseKek("0123456789abcdef0123456789abcde\n"), Not(IsOk()));
  EXPECT_THAT(ParseKek("correct horse battery staple 123"), Not(IsOk()));
  EXPECT_THAT(ParseKek(""), Not(IsOk()));
  EXPECT_THAT(ParseKek(std::string(63, 'a')), Not(IsOk()));
  EXPECT_THAT(ParseKek(std::string(64, 'g')), Not(IsOk()));
  EXPECT_THAT(ParseKek("c2hvcnQ="), Not(IsOk()));
  EXPECT_THAT(LoadKekFile("/nonexistent/kek"), Not(IsOk()));
}

TEST(KekTest, DevKekIsCreatedOnceWithPrivateMode) {
  std::string dir = MakeTempDir();
  bool created = false;
  auto a = LoadOrCreateDevKek(dir + "/dev-kek", &created);
  ASSERT_THAT(a, IsOk());
  EXPECT_TRUE(created);
  struct stat st;
  ASSERT_EQ(::stat((dir + "/dev-kek").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = LoadOrCreateDevKek(dir + "/dev-kek", &created);
  ASSERT_THAT(b, IsOk());
  EXPECT_FALSE(created);
  EXPECT_EQ(a->view(), b->view());
}

TEST(SealerTest, SealOpenAndFailureModes) {
  auto kr = keyring::Keyring::Create("shop", absl::FromUnixSeconds(1800000000));
  ASSERT_THAT(kr, IsOk());
  auto sealer = Sealer::New(crypto::RandomSecret(32));
  ASSERT_THAT(sealer, IsOk());
  auto blob = (*sealer)->Seal(**kr);
  ASSERT_THAT(blob, IsOk());
  // The key material is not visible in the sealed blob.
  EXPECT_EQ(blob->find(std::string((*kr)->primary().material())), std::string::npos);
  auto back = (*sealer)->Open("shop", *blob);
  ASSERT_THAT(back, IsOk()) << back.status();
  EXPECT_EQ((*back)->primary().id(), (*kr)->primary().id());
  EXPECT_EQ((*back)->primary().material(), (*kr)->primary().material());

  // Another KEK: reported as such.
  auto other = Sealer::New(crypto::RandomSecret(32));
  auto wrong = (*other)->Open("shop", *blob);
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong.status()));
  EXPECT_NE(wrong.status().message().find("different KEK"), absl::string_view::npos);
  EXPECT_EQ(wrong.status().message().find((*kr)->primary().material()), absl::string_view::npos);
  // Renamed to another keyring: the name is authenticated.
  EXPECT_TRUE(absl::IsDataLoss((*sealer)->Open("other", *blob).status()));
  // Any flipped byte after the header: corruption.
  for (size_t i = 12; i < blob->size(); i += 7) {
    std::string t = *blob;
    t[i] ^= 0x40;
    EXPECT_TRUE(absl::IsDataLoss((*sealer)->Open("shop", t).status())) << i;
  }
  EXPECT_TRUE(absl::IsDataLoss((*sealer)->Open("shop", "junk").status()));
  EXPECT_EQ((*sealer)->fingerprint().size(), 16u);
  EXPECT_NE((*sealer)->fingerprint(), (*other)->fingerprint());
}

}  // namespace
}  // namespace sessiontoken::store
