#include "server/engine/engine.h"

#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/keyring/lifecycle.h"
#include "server/store/file_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::engine {
namespace {

using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;
using ::testing::Not;

using format::VerifyStatus;

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : clock_(absl::FromUnixSeconds(1800000000)), kek_(crypto::RandomSecret(32)) {}

  std::unique_ptr<store::Sealer> NewSealer() {
    return *store::Sealer::New(crypto::SecretBytes::CopyFrom(kek_.view()));
  }
  std::unique_ptr<Engine> NewEngine(std::unique_ptr<store::Store> s) {
    auto e = Engine::New(std::move(s), NewSealer(), &clock_, {});
    EXPECT_THAT(e, IsOk()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }

  keyring::FakeClock clock_;
  crypto::SecretBytes kek_;
};

TEST_F(EngineTest, CreatesDefaultKeyringAndSignsVerifies) {
  auto e = NewEngine(std::make_unique<store::MemoryStore>());
  auto s = e->Sign("default", "payload", "web", absl::Hours(1));
  ASSERT_THAT(s, IsOk()) << s.status();
  auto v = e->Verify("default", s->token, "web");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->status, VerifyStatus::kValid);
  EXPECT_EQ(v->payload, "payload");
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(e->Verify("default", s->token, "web")->status, VerifyStatus::kExpired);
}

TEST_F(EngineTest, RequestErrorsNameTheField) {
  auto e = NewEngine(std::make_unique<store::MemoryStore>());
  auto expect = [](const absl::Status& s, absl::StatusCode code, absl::string_view field) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), field)) << s;
  };
  expect(e->Sign("", "p", "", absl::Hours(1)).status(), absl::StatusCode::kInvalidArgument,
         "keyring");
  expect(e->Sign("nope", "p", "", absl::Hours(1)).status(), absl::StatusCode::kNotFound, "keyring");
  expect(e->Sign("BAD NAME", "p", "", absl::Hours(1)).status(), absl::StatusCode::kInvalidArgument,
         "keyring");
  expect(e->Sign("default", std::string(2049, 'x'), "", absl::Hours(1)).status(),
         absl::StatusCode::kInvalidArgument, "payload");
  expect(e->Sign("default", "p", std::string(257, 'a'), absl::Hours(1)).status(),
         absl::StatusCode::kInvalidArgument, "audience");
  expect(e->Sign("default", "p", "", absl::ZeroDuration()).status(),
         absl::StatusCode::kInvalidArgument, "ttl");
  expect(e->Sign("default", "p", "", absl::Hours(24 * 32)).status(),
         absl::StatusCode::kInvalidArgument, "ttl");
  // An over-long token is an invalid token (a result), not a bad request.
  EXPECT_EQ(e->Verify("default", std::string(4096, 'A'), "")->status,
            format::VerifyStatus::kMalformed);
  expect(e->Rotate("test", "nope").status(), absl::StatusCode::kNotFound, "keyring");
}

// Flask-format keyrings: the limit is the cookie a browser keeps (4095 bytes after
// compression), not the native raw-payload limit. A 3,000-byte session Flask itself would
// compress into a small cookie is signed; one that cannot fit is refused naming the payload.
TEST_F(EngineTest, FlaskPayloadLimitIsTheCompressedCookie) {
  auto e = NewEngine(std::make_unique<store::MemoryStore>());
  ASSERT_THAT(e->CreateKeyring("t", "legacy", {}, v1::HMAC_SHA1_FLASK), IsOk());
  std::string compressible = "{\"cart\":\"";
  while (compressible.size() < 2998) compressible += "item-0042,";
  compressible.resize(2998);
  compressible += "\"}";
  ASSERT_EQ(compressible.size(), 3000u);
  auto s = e->Sign("legacy", compressible, "cookie-session", absl::Hours(1));
  ASSERT_THAT(s, IsOk());
  EXPECT_LT(s->token.size(), 4096u);
  auto v = e->Verify("legacy", s->token, "cookie-session");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->status, VerifyStatus::kValid);
  EXPECT_EQ(v->payload, compressible);
  // Random bytes do not compress: 3,200 of them make a cookie over 4095 bytes.
  EXPECT_THAT(
      e->Sign("legacy", crypto::RandomSecret(3200).view(), "cookie-session", absl::Hours(1)),
      StatusIs(absl::StatusCode::kInvalidArgument, "payload: 3200 bytes make a Flask cookie"));
  // The same 3,000 bytes on a native keyring exceed the raw payload limit (2048 by default).
  EXPECT_THAT(
      e->Sign("default", compressible, "", absl::Hours(1)),
      StatusIs(absl::StatusCode::kInvalidArgument, "payload: 3000 bytes exceeds the limit"));
}

TEST(LimitsTest, ServerLimitsAreCheckedOnce) {
  EXPECT_THAT(ValidateLimits({}), IsOk());
  EXPECT_THAT(ValidateLimits({.max_payload_bytes = 3001}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_payload_bytes"));
  EXPECT_THAT(ValidateLimits({.max_payload_bytes = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_payload_bytes"));
  EXPECT_THAT(ValidateLimits({.max_ttl = absl::Hours(24 * 366 * 10) + absl::Seconds(1)}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_ttl"));
  EXPECT_THAT(ValidateLimits({.max_clock_skew = absl::Hours(25)}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_clock_skew"));
  EXPECT_THAT(CheckLifetime("ttl", absl::Milliseconds(1500), absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, "ttl: must be whole seconds"));
  EXPECT_THAT(CheckLifetime("max_age", absl::ZeroDuration(), absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_age"));
  EXPECT_THAT(CheckLifetime("ttl", absl::Hours(1), absl::Hours(1)), IsOk());
}

// Rollback protection (hardening, point 3): a keyring file restored from an older copy,
// which would bring back a key destroyed since it was taken, is refused at start-up and
// changes nothing; an operator restoring a backup on purpose names the keyring once.
TEST_F(EngineTest, ARolledBackKeyringFileIsRefused) {
  const std::string dir = sessiontoken::testing::MakeTempDir();
  const std::string file = dir + "/keyrings/default.keyring";
  std::string old_copy;
  uint32_t leaked = 0;
  {
    auto e = NewEngine(*store::FileStore::Open(dir));
    leaked = (*e->Get("default"))->primary().id();
    ASSERT_THAT(e->Rotate("t", "default", /*promote_now=*/true), IsOk());
    old_copy = sessiontoken::testing::ReadFile(file);  // revision 2: the leaked key is ACTIVE
    ASSERT_THAT(e->Disable("t", "default", leaked), IsOk());
    ASSERT_THAT(e->Destroy("t", "default", leaked), IsOk());  // revision 4
  }
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << old_copy;
  }
  auto refused = Engine::New(*store::FileStore::Open(dir), NewSealer(), &clock_, {});
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition, "rolled back"));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition, "--accept_rollback"));
  EXPECT_EQ(sessiontoken::testing::ReadFile(file), old_copy);  // a refused start writes nothing

  EngineOptions restore;
  restore.accept_rollback = {"default"};
  {
    auto e = Engine::New(*store::FileStore::Open(dir), NewSealer(), &clock_, restore);
    ASSERT_THAT(e, IsOk());
    EXPECT_EQ((*(*e)->Get("default"))->revision(), 2u);
    EXPECT_EQ((*(*e)->Get("default"))->Find(leaked)->state(), v1::ACTIVE);  // as restored
  }
  // Accepted once: the mark now follows the restored revision, later starts need no flag.
  EXPECT_THAT(Engine::New(*store::FileStore::Open(dir), NewSealer(), &clock_, {}), IsOk());
}

TEST_F(EngineTest, ACrashBetweenAWriteAndItsMarkOnlyRaisesTheMarkLater) {
  const std::string dir = sessiontoken::testing::MakeTempDir();
  {
    auto e = NewEngine(*store::FileStore::Open(dir));
    ASSERT_THAT(e->Rotate("t", "default"), IsOk());  // revision 2, mark 2
  }
  {
    // The keyring record moves ahead of its mark, as after a crash between the two writes.
    auto files = store::FileStore::Open(dir);
    ASSERT_THAT(files, IsOk());
    auto blob = (*files)->Get("default");
    ASSERT_THAT(blob, IsOk());
    auto next = keyring::Rotate(**NewSealer()->Open("default", blob->data), clock_.Now(),
                                /*promote=*/true, nullptr);
    ASSERT_THAT(next, IsOk());
    ASSERT_THAT((*files)->Put("default", *NewSealer()->Seal(**next), blob->version), IsOk());
  }
  {
    auto e = NewEngine(*store::FileStore::Open(dir));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ((*e->Get("default"))->revision(), 3u);
  }
  auto files = store::FileStore::Open(dir);
  auto mark = (*files)->Get("_mark.default");
  ASSERT_THAT(mark, IsOk());
  EXPECT_EQ(*NewSealer()->OpenMark("default", mark->data), 3u);
}

TEST_F(EngineTest, RotationIsPersistedBeforeItIsVisible) {
  std::string dir = sessiontoken::testing::MakeTempDir();
  std::string old_token;
  uint32_t new_id = 0;
  {
    auto e = NewEngine(*store::FileStore::Open(dir));
    old_token = e->Sign("default", "x", "", absl::Hours(2))->token;
    auto r = e->Rotate("test", "default");
    ASSERT_THAT(r, IsOk()) << r.status();
    new_id = r->key_id;
    EXPECT_EQ(r->keyring->revision(), 2u);
    EXPECT_EQ((*e->Get("default"))->primary().id(), new_id);
  }
  auto e = NewEngine(*store::FileStore::Open(dir));
  auto kr = e->Get("default");
  ASSERT_THAT(kr, IsOk());
  EXPECT_EQ((*kr)->revision(), 2u);
  EXPECT_EQ((*kr)->primary().id(), new_id);
  auto v = e->Verify("default", old_token, "");
  EXPECT_EQ(v->status, VerifyStatus::kValid);
  EXPECT_TRUE(v->refresh_recommended);
  EXPECT_EQ(e->Sign("default", "x", "", absl::Hours(1))->key_id, new_id);
}

TEST_F(EngineTest, WrongKekRefusesToLoadAndWritesNothing) {
  std::string dir = sessiontoken::testing::MakeTempDir();
  { NewEngine(*store::FileStore::Open(dir)); }
  std::string before = sessiontoken::testing::ReadFile(dir + "/keyrings/default.keyring");
  auto other = store::Sealer::New(crypto::RandomSecret(32));
  auto e = Engine::New(*store::FileStore::Open(dir), *std::move(other), &clock_, {});
  EXPECT_TRUE(absl::IsFailedPrecondition(e.status())) << e.status();
  EXPECT_EQ(sessiontoken::testing::ReadFile(dir + "/keyrings/default.keyring"), before);
}

TEST_F(EngineTest, ReadersKeepTheirSnapshotAcrossRotation) {
  auto e = NewEngine(std::make_unique<store::MemoryStore>());
  auto snapshot = *e->Get("default");
  const uint32_t old_primary = snapshot->primary().id();
  ASSERT_THAT(e->Rotate("test", "default"), IsOk());
  EXPECT_EQ(snapshot->primary().id(), old_primary);
  EXPECT_NE((*e->Get("default"))->primary().id(), old_primary);
}

}  // namespace
}  // namespace sessiontoken::engine

namespace sessiontoken::engine {
namespace {

// A store whose writes take a while (a slow disk), to test admin deadlines.
class SlowStore final : public store::Store {
 public:
  absl::StatusOr<std::vector<std::string>> List() override { return inner_.List(); }
  absl::StatusOr<store::VersionedBlob> Get(absl::string_view n) override { return inner_.Get(n); }
  absl::StatusOr<uint64_t> Put(absl::string_view n, absl::string_view d, uint64_t v) override {
    if (slow_) absl::SleepFor(absl::Milliseconds(400));
    return inner_.Put(n, d, v);
  }
  bool slow_ = false;

 private:
  store::MemoryStore inner_;
};

TEST(EngineDeadlineTest, AdminChangeThatCannotStartInTimeChangesNothing) {
  keyring::FakeClock clock(absl::FromUnixSeconds(1800000000));
  auto slow = std::make_unique<SlowStore>();
  SlowStore* s = slow.get();
  EngineOptions opts;
  opts.admin_wait = absl::Seconds(5);
  auto e =
      *Engine::New(std::move(slow), *store::Sealer::New(crypto::RandomSecret(32)), &clock, opts);
  s->slow_ = true;
  std::thread first([&] { EXPECT_THAT(e->Rotate("first", "default"), IsOk()); });
  absl::SleepFor(absl::Milliseconds(100));  // `first` is now inside its slow write
  auto late = e->Rotate(Actor("second", absl::Now() + absl::Milliseconds(50)), "default");
  EXPECT_TRUE(absl::IsDeadlineExceeded(late.status())) << late.status();
  first.join();
  EXPECT_EQ((*e->Get("default"))->revision(), 2u);  // only `first` happened
  // The server-side default caps a caller that asks for no deadline at all.
  EngineOptions tight = opts;
  tight.admin_wait = absl::Milliseconds(50);
  auto slow2 = std::make_unique<SlowStore>();
  SlowStore* s2 = slow2.get();
  auto e2 =
      *Engine::New(std::move(slow2), *store::Sealer::New(crypto::RandomSecret(32)), &clock, tight);
  s2->slow_ = true;
  std::thread a([&] { EXPECT_THAT(e2->Rotate("a", "default"), IsOk()); });  // starts at once
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(e2->Rotate("b", "default").status()));
  a.join();
}

// A replica that lost its store: a change queued behind one stuck on the store says so.
class BehindReplica final : public ReplicaState {
 public:
  bool MayBeBehind() const override { return true; }
};

TEST(EngineDeadlineTest, QueuedChangeNamesTheStoreWhenTheReplicaLostIt) {
  keyring::FakeClock clock(absl::FromUnixSeconds(1800000000));
  auto slow = std::make_unique<SlowStore>();
  SlowStore* s = slow.get();
  auto e = *Engine::New(std::move(slow), *store::Sealer::New(crypto::RandomSecret(32)), &clock, {});
  BehindReplica behind;
  e->SetReplicaState(&behind);
  s->slow_ = true;
  std::thread first([&] { EXPECT_THAT(e->Rotate("first", "default"), IsOk()); });
  absl::SleepFor(absl::Milliseconds(100));  // `first` is now inside its slow write
  auto late = e->Rotate(Actor("second", absl::Now() + absl::Milliseconds(100)), "default");
  EXPECT_THAT(late.status(),
              ::sessiontoken::testing::StatusIs(absl::StatusCode::kDeadlineExceeded,
                                                "lost contact with the store (etcd)"));
  EXPECT_THAT(late.status().message(), ::testing::HasSubstr("changed nothing"));
  first.join();
  EXPECT_EQ((*e->Get("default"))->revision(), 2u);
  e->SetReplicaState(nullptr);
}

}  // namespace
}  // namespace sessiontoken::engine
