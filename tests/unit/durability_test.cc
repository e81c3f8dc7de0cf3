// Issue 17 point 6: a directory fsync that fails after the rename. The rename already made the
// change the one on disk, so the store reports it done (with its version) and the engine
// publishes it; the fsync error is reported separately and retried. What the engine serves,
// what a restart loads and what later changes do are checked end to end on a real FileStore.
#include <functional>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/store/file_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::store {

// The seam: replaces the store's directory fsync (test-only; FileStore names it a friend).
class FileStoreTestPeer {
 public:
  static void SetSyncDir(FileStore& s, std::function<absl::Status(const std::string&)> fn) {
    absl::MutexLock lock(&s.mu_);
    s.sync_dir_ = std::move(fn);
  }
};

namespace {

using ::sessiontoken::testing::MakeTempDir;

// Fails the next `failures` directory fsyncs (EIO, as a failing disk would), then passes.
struct FailingSync {
  int failures = 0;
  int calls = 0;
  std::function<absl::Status(const std::string&)> Fn() {
    return [this](const std::string& dir) {
      ++calls;
      if (failures > 0) {
        --failures;
        return absl::InternalError("cannot fsync directory " + dir + ": Input/output error");
      }
      return absl::OkStatus();
    };
  }
};

TEST(FileStoreSyncTest, RenamedChangeIsReportedWithItsVersionAndTheErrorSeparately) {
  const std::string dir = MakeTempDir();
  auto store = *FileStore::Open(dir);
  FailingSync sync{.failures = 1};
  FileStoreTestPeer::SetSyncDir(*store, sync.Fn());
  auto v1 = store->Put("a", "one", 0);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(store->pending_sync_error().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(store->Get("a")->data, "one");
  EXPECT_EQ(store->Get("a")->version, *v1);
  // The next write works on top of it (no ABORTED) and its fsync clears the error.
  auto v2 = store->Put("a", "two", *v1);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_TRUE(store->pending_sync_error().ok());
  EXPECT_EQ(sync.calls, 2);
}

class EngineSyncFailureTest : public ::testing::Test {
 protected:
  EngineSyncFailureTest()
      : dir_(MakeTempDir()),
        clock_(absl::FromUnixSeconds(1800000000)),
        kek_(crypto::RandomSecret(32)) {}

  // An engine on a FileStore in dir_; *store receives the store (owned by the engine).
  std::unique_ptr<engine::Engine> Start(FileStore** store) {
    auto fs = FileStore::Open(dir_);
    EXPECT_TRUE(fs.ok()) << fs.status();
    if (!fs.ok()) return nullptr;
    *store = fs->get();
    auto e = engine::Engine::New(
        *std::move(fs), *Sealer::New(crypto::SecretBytes::CopyFrom(kek_.view())), &clock_, {});
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }

  std::string dir_;
  keyring::FakeClock clock_;
  crypto::SecretBytes kek_;
};

TEST_F(EngineSyncFailureTest, ChangeReportedOkIsPublishedAndIsWhatARestartLoads) {
  FileStore* store = nullptr;
  auto e = Start(&store);
  ASSERT_NE(e, nullptr);
  // Each change writes the keyring and then its high-water mark (rollback protection): two
  // directory fsyncs, both failing on this disk.
  FailingSync sync{.failures = 2};
  FileStoreTestPeer::SetSyncDir(*store, sync.Fn());

  auto rotated = e->Rotate("ops", "default", /*promote_now=*/true);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(sync.calls, 2);
  EXPECT_FALSE(store->pending_sync_error().ok());
  // What the engine serves is the change it reported.
  auto served = *e->Get("default");
  EXPECT_EQ(served->revision(), rotated->keyring->revision());
  EXPECT_EQ(served->primary().id(), rotated->key_id);
  auto signed_token = e->Sign("default", "p", "web", absl::Hours(1));
  ASSERT_TRUE(signed_token.ok());
  EXPECT_EQ(signed_token->key_id, rotated->key_id);

  // A restart right now loads exactly that change.
  e.reset();
  e = Start(&store);
  ASSERT_NE(e, nullptr);
  auto loaded = *e->Get("default");
  EXPECT_EQ(loaded->revision(), rotated->keyring->revision());
  EXPECT_EQ(loaded->primary().id(), rotated->key_id);
  EXPECT_EQ(e->Verify("default", signed_token->token, "web")->status, format::VerifyStatus::kValid);
}

TEST_F(EngineSyncFailureTest, LaterChangesStillWork) {
  FileStore* store = nullptr;
  auto e = Start(&store);
  ASSERT_NE(e, nullptr);
  FailingSync sync{.failures = 4};  // two changes, each a keyring write and a mark write
  FileStoreTestPeer::SetSyncDir(*store, sync.Fn());
  auto first = e->Rotate("ops", "default", true);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = e->Disable("ops", "default", first->previous_primary_key_id);
  ASSERT_TRUE(second.ok()) << second.status();  // was ABORTED: the engine had the old version
  EXPECT_FALSE(store->pending_sync_error().ok());
  auto third = e->Rotate("ops", "default", true);  // this directory fsync succeeds
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE(store->pending_sync_error().ok());
  EXPECT_EQ(third->keyring->revision(), first->keyring->revision() + 2);

  e.reset();
  e = Start(&store);
  ASSERT_NE(e, nullptr);
  auto loaded = *e->Get("default");
  EXPECT_EQ(loaded->revision(), third->keyring->revision());
  EXPECT_EQ(loaded->primary().id(), third->key_id);
  EXPECT_EQ(loaded->Find(first->previous_primary_key_id)->state(), v1::DISABLED);
}

}  // namespace
}  // namespace sessiontoken::store
