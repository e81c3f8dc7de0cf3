// Issue 12: a keyring rotated for ever must not grow for ever. 10,000 rotations driven by a
// policy on a fake clock, through the engine and its scheduler pass (Tick), on the file store
// and on a real single-member etcd on 127.0.0.1: tombstones are pruned after the retention,
// so the stored (sealed) keyring and its key count stay small, each prune is audited, and
// every token signed during the run verifies VALID until its expiry.
//
// Both stores keep their data on tmpfs (/dev/shm) when the machine has one: the test is
// about size, not durability, and its 20,000 fsync'ed writes (keyring and high-water mark
// per rotation) take minutes on a disk. Without /dev/shm it runs on TEST_TMPDIR or /tmp.
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/engine/scheduler.h"
#include "server/store/etcd_store.h"
#include "server/store/file_store.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::engine {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::IsOk;

constexpr int kRotations = 10000;
// Rotate hourly; former primaries verify 2 h, are destroyed 1 h after being disabled, and
// their tombstones are pruned a day later: at most 1 + 2 + 1 + 24 keys, plus one in passing.
constexpr int64_t kPeriod = 3600, kWindow = 2 * 3600, kDestroyAfter = 3600;
constexpr int64_t kRetention = 24 * 3600, kMaxTokenTtl = 2 * 3600;
constexpr size_t kMaxKeys = 1 + 2 + 1 + 24 + 1;
// The bound on the sealed keyring record: ~60 bytes per live key, ~25 per tombstone, plus
// the policy and the seal. Without pruning it would pass 250 KB.
constexpr size_t kMaxStoredBytes = 4096;

class CountingAudit : public AuditLog {
 public:
  void Record(const AuditEvent& e) override {
    if (e.outcome != "ok") ++failures;
    if (e.operation == "rotate") ++rotations;
    if (e.operation == "prune") ++prunes;
  }
  int failures = 0, rotations = 0, prunes = 0;
};

v1::KeyringPolicy HourlyPolicy() {
  v1::KeyringPolicy p;
  p.mutable_rotation_period()->set_seconds(kPeriod);
  p.mutable_verify_window()->set_seconds(kWindow);
  p.mutable_destroy_after()->set_seconds(kDestroyAfter);
  p.mutable_max_token_ttl()->set_seconds(kMaxTokenTtl);
  p.mutable_tombstone_retention()->set_seconds(kRetention);
  return p;
}

// Where the stores keep their data: tmpfs when there is one with room for both stores
// (etcd alone preallocates 64 MiB of WAL; a container's /dev/shm is often just 64 MiB),
// else the usual temp base.
std::string DataBase() {
  struct statvfs fs;
  if (::access("/dev/shm", W_OK | X_OK) == 0 && ::statvfs("/dev/shm", &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize >= (uint64_t{1} << 30)) {
    return "/dev/shm";
  }
  const char* base = std::getenv("TEST_TMPDIR");
  return base != nullptr ? base : "/tmp";
}

// Runs `f` with TEST_TMPDIR set to `dir` (read by MakeTempDir and EtcdCluster::Start).
template <typename F>
auto WithTempBase(const std::string& dir, F f) {
  const char* old = std::getenv("TEST_TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("TEST_TMPDIR", dir.c_str(), 1);
  auto result = f();
  if (old != nullptr) {
    ::setenv("TEST_TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TEST_TMPDIR");
  }
  return result;
}

class KeyringGrowthTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<store::Store> Open() {
    if (GetParam() == "file") {
      dir_ = WithTempBase(DataBase(), [] { return sessiontoken::testing::MakeTempDir(); });
      EXPECT_FALSE(dir_.empty()) << "no temp dir under " << DataBase();
      if (dir_.empty()) return nullptr;
      auto s = store::FileStore::Open(dir_);
      EXPECT_THAT(s, IsOk());
      return s.ok() ? *std::move(s) : nullptr;
    }
    if (etcd_ == nullptr) {
      auto c = WithTempBase(DataBase(), [] { return EtcdCluster::Start(1); });
      EXPECT_THAT(c, IsOk());
      if (!c.ok()) return nullptr;
      etcd_ = std::move(*c).release();
    }
    store::EtcdOptions o;
    o.endpoints = etcd_->endpoints();
    o.prefix = absl::StrCat("/growth-", crypto::RandomUint32(), "/");
    auto s = store::EtcdStore::New(std::move(o));
    EXPECT_THAT(s, IsOk());
    return s.ok() ? *std::move(s) : nullptr;
  }

  static EtcdCluster* etcd_;
  std::string dir_;
};
EtcdCluster* KeyringGrowthTest::etcd_ = nullptr;

struct Issued {
  std::string token;
  int64_t expires_at;
};

// Verifies every outstanding token: VALID before its expiry, rejected from then on (and
// dropped). Returns how many were checked VALID.
int CheckTokens(const Engine& e, int64_t now, std::vector<Issued>* issued) {
  int valid = 0;
  std::vector<Issued> left;
  for (Issued& t : *issued) {
    auto v = e.Verify("ring", t.token, "");
    EXPECT_THAT(v, IsOk());
    if (!v.ok()) continue;
    if (now < t.expires_at) {
      EXPECT_EQ(v->status, format::VerifyStatus::kValid)
          << format::VerifyStatusName(v->status) << " at " << now << ", expiry " << t.expires_at;
      ++valid;
      left.push_back(std::move(t));
    } else {
      EXPECT_NE(v->status, format::VerifyStatus::kValid) << "at " << now;
    }
  }
  *issued = std::move(left);
  return valid;
}

TEST_P(KeyringGrowthTest, TenThousandRotationsKeepTheStoredKeyringSmall) {
  std::unique_ptr<store::Store> owned = Open();
  ASSERT_NE(owned, nullptr);
  store::Store* const store = owned.get();  // owned by the engine from here on
  keyring::FakeClock clock(absl::FromUnixSeconds(1800000000));
  CountingAudit audit;
  EngineOptions opts;
  opts.default_keyring = "";
  opts.audit_log = &audit;
  opts.limits.max_ttl = absl::Seconds(kMaxTokenTtl);
  auto e =
      Engine::New(std::move(owned), *store::Sealer::New(crypto::RandomSecret(32)), &clock, opts);
  ASSERT_THAT(e, IsOk());
  Engine& engine = **e;
  ASSERT_THAT(engine.CreateKeyring("test", "ring", HourlyPolicy()), IsOk());

  std::mt19937 rng(12);
  std::uniform_int_distribution<int64_t> ttl(1, kMaxTokenTtl);
  std::vector<Issued> issued;
  size_t max_stored = 0, max_keys = 0, signed_tokens = 0, valid_checks = 0;
  int rotations = 0;
  uint32_t primary = (*engine.Get("ring"))->primary().id();
  for (int half_hour = 1; rotations < kRotations && half_hour <= 2 * kRotations; ++half_hour) {
    clock.Advance(absl::Minutes(30));
    Tick(engine);
    auto ring = engine.Get("ring");
    ASSERT_THAT(ring, IsOk());
    if ((*ring)->primary().id() != primary) {
      ++rotations;
      primary = (*ring)->primary().id();
    }
    max_keys = std::max(max_keys, (*ring)->keys().size());
    if (half_hour % 10 == 0) {  // the stored record, every 5 rotations
      auto record = store->Get("ring");
      ASSERT_THAT(record, IsOk());
      max_stored = std::max(max_stored, record->data.size());
    }

    auto s = engine.Sign("ring", "session", "", absl::Seconds(ttl(rng)));
    ASSERT_THAT(s, IsOk());
    issued.push_back({s->token, s->expires_at});
    ++signed_tokens;
    valid_checks += CheckTokens(engine, absl::ToUnixSeconds(clock.Now()), &issued);
    ASSERT_FALSE(HasFailure()) << "half hour " << half_hour;
  }
  const auto final_ring = *engine.Get("ring");
  const size_t final_stored = store->Get("ring")->data.size();
  max_stored = std::max(max_stored, final_stored);
  std::printf(
      "%s store: %d rotations, sealed keyring %zu bytes at the end (max %zu), %zu keys "
      "(max %zu), %d tombstones pruned, %zu tokens signed, %zu VALID checks\n",
      GetParam().c_str(), rotations, final_stored, max_stored, final_ring->keys().size(), max_keys,
      audit.prunes, signed_tokens, valid_checks);

  EXPECT_EQ(rotations, kRotations);
  EXPECT_EQ(audit.rotations, kRotations);  // each one audited, by the scheduler
  EXPECT_EQ(audit.failures, 0);
  EXPECT_LE(max_keys, kMaxKeys);
  EXPECT_LE(max_stored, kMaxStoredBytes);
  // Every key ever created is either still there or was pruned, with an audit line each.
  EXPECT_EQ(static_cast<size_t>(audit.prunes) + final_ring->keys().size(),
            static_cast<size_t>(kRotations) + 1);
  // The survivors: the primary, the keys still in their windows, the day's tombstones.
  int destroyed = 0;
  for (const auto& key : final_ring->keys()) destroyed += key->state() == v1::DESTROYED;
  EXPECT_EQ(destroyed, kRetention / kPeriod);
  EXPECT_GT(valid_checks, signed_tokens);  // most tokens were checked more than once
}

INSTANTIATE_TEST_SUITE_P(Stores, KeyringGrowthTest, ::testing::Values("file", "etcd"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sessiontoken::engine
