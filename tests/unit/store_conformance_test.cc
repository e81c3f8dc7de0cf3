// One set of cases run against every Store: memory, file and etcd (a real single-member
// etcd on 127.0.0.1, started by the test). Each case states the Store contract.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/store/etcd_store.h"
#include "server/store/file_store.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::store {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::IsOkAndHolds;
using ::sessiontoken::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "etcd") {
      if (etcd_ == nullptr) {
        auto c = EtcdCluster::Start(1);
        ASSERT_THAT(c, IsOk());
        etcd_ = std::move(*c).release();
      }
      prefix_ = absl::StrCat("/conformance-", crypto::RandomUint32(), "/");
    } else if (GetParam() == "file") {
      dir_ = sessiontoken::testing::MakeTempDir();
    }
    auto s = Open();
    ASSERT_NE(s, nullptr);
    store_ = std::move(s);
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }

  // Another handle on the same stored data: a second etcd client (a second replica), or
  // the same object where the store admits one opener (file) or lives in memory.
  Store& Second() {
    if (GetParam() != "etcd") return *store_;
    if (second_ == nullptr) second_ = Open();
    return *second_;
  }
  std::unique_ptr<Store> Open() {
    if (GetParam() == "memory") return std::make_unique<MemoryStore>();
    if (GetParam() == "file") {
      auto s = FileStore::Open(dir_);
      return s.ok() ? *std::move(s) : nullptr;
    }
    EtcdOptions o;
    o.endpoints = etcd_->endpoints();
    o.prefix = prefix_;
    auto s = EtcdStore::New(std::move(o));
    return s.ok() ? *std::move(s) : nullptr;
  }

  static EtcdCluster* etcd_;
  std::string prefix_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Store> second_;
};
EtcdCluster* StoreConformanceTest::etcd_ = nullptr;

TEST_P(StoreConformanceTest, EmptyStoreHasNothing) {
  EXPECT_THAT(store_->List(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->Get("shop"), StatusIs(absl::StatusCode::kNotFound, "shop"));
}

TEST_P(StoreConformanceTest, CreateThenCompareAndSwap) {
  auto v1 = store_->Put("shop", "one", 0);
  ASSERT_THAT(v1, IsOk());
  EXPECT_GT(*v1, 0u);
  auto got = store_->Get("shop");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->data, "one");
  EXPECT_EQ(got->version, *v1);
  auto v2 = store_->Put("shop", "two", *v1);
  ASSERT_THAT(v2, IsOk());
  EXPECT_GT(*v2, *v1);
  got = Second().Get("shop");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->data, "two");
  EXPECT_EQ(got->version, *v2);
}

TEST_P(StoreConformanceTest, ZeroMeansMustNotExist) {
  auto v1 = store_->Put("shop", "first", 0);
  ASSERT_THAT(v1, IsOk());
  EXPECT_THAT(Second().Put("shop", "second", 0), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(store_->Get("shop")->data, "first");
  EXPECT_EQ(store_->Get("shop")->version, *v1);
}

TEST_P(StoreConformanceTest, StaleOrFutureVersionIsAbortedAndChangesNothing) {
  auto v1 = store_->Put("shop", "one", 0);
  auto v2 = store_->Put("shop", "two", *v1);
  ASSERT_THAT(v2, IsOk());
  EXPECT_THAT(Second().Put("shop", "stale", *v1), StatusIs(absl::StatusCode::kAborted, "shop"));
  EXPECT_THAT(Second().Put("shop", "future", *v2 + 1000), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(store_->Get("shop")->data, "two");
  // A version for a keyring that does not exist: nothing is created.
  EXPECT_THAT(store_->Put("absent", "x", 7), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(store_->Get("absent"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, BinaryAndLargeValuesRoundTrip) {
  std::string large(crypto::RandomSecret(48 * 1024).view());
  large[100] = '\0';
  ASSERT_THAT(store_->Put("large", large, 0), IsOk());
  const std::string binary("\0\xff\n\r\x01STK1\n", 10);
  ASSERT_THAT(store_->Put("binary", binary, 0), IsOk());
  ASSERT_THAT(store_->Put("empty", "", 0), IsOk());
  EXPECT_EQ(Second().Get("large")->data, large);
  EXPECT_EQ(Second().Get("binary")->data, binary);
  EXPECT_EQ(Second().Get("empty")->data, "");
}

TEST_P(StoreConformanceTest, ListReturnsSortedNames) {
  for (const char* name : {"shop", "0day", "a-b_c", "admin", "z9"}) {
    ASSERT_THAT(store_->Put(name, name, 0), IsOk()) << name;
  }
  EXPECT_THAT(Second().List(), IsOkAndHolds(ElementsAre("0day", "a-b_c", "admin", "shop", "z9")));
}

// The engine keeps records beside keyrings (high-water marks, "_mark.<keyring>").
TEST_P(StoreConformanceTest, RecordsBesideKeyringsAreStoredAndListed) {
  ASSERT_THAT(store_->Put("shop", "keyring", 0), IsOk());
  auto mark = store_->Put("_mark.shop", "mark", 0);
  ASSERT_THAT(mark, IsOk());
  EXPECT_THAT(Second().Put("_mark.shop", "stale", 0), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(Second().Get("_mark.shop")->data, "mark");
  EXPECT_THAT(Second().List(), IsOkAndHolds(ElementsAre("_mark.shop", "shop")));
}

TEST_P(StoreConformanceTest, VersionsOfOneKeyringStrictlyIncrease) {
  auto a = store_->Put("a", "a0", 0);
  ASSERT_THAT(a, IsOk());
  uint64_t last = *a;
  for (int i = 1; i <= 5; ++i) {
    ASSERT_THAT(store_->Put(absl::StrCat("other", i), "x", 0), IsOk());
    auto next = store_->Put("a", absl::StrCat("a", i), last);
    ASSERT_THAT(next, IsOk());
    EXPECT_GT(*next, last);
    last = *next;
  }
  EXPECT_EQ(store_->Get("a")->version, last);
}

// Writers that read, modify and compare-and-swap, retrying on Aborted, lose no update.
TEST_P(StoreConformanceTest, ConcurrentWritersLoseNoUpdate) {
  ASSERT_THAT(store_->Put("counter", "0", 0), IsOk());
  constexpr int kWriters = 4;
  constexpr int kIncrements = 15;
  std::vector<std::unique_ptr<Store>> handles;
  for (int w = 0; w < kWriters; ++w) handles.push_back(GetParam() == "etcd" ? Open() : nullptr);
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    Store& s = handles[w] ? *handles[w] : *store_;
    threads.emplace_back([&s, &conflicts] {
      for (int done = 0; done < kIncrements;) {
        auto cur = s.Get("counter");
        if (!cur.ok()) return;
        int n = 0;
        if (!absl::SimpleAtoi(cur->data, &n)) return;
        auto put = s.Put("counter", absl::StrCat(n + 1), cur->version);
        if (put.ok()) {
          ++done;
        } else if (absl::IsAborted(put.status())) {
          ++conflicts;
        } else {
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(store_->Get("counter")->data, absl::StrCat(kWriters * kIncrements));
  std::printf("[ %s ] %d conflicts retried\n", GetParam().c_str(), conflicts.load());
}

INSTANTIATE_TEST_SUITE_P(AllStores, StoreConformanceTest,
                         ::testing::Values("memory", "file", "etcd"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sessiontoken::store
