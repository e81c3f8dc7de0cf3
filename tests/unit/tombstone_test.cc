// Tombstone pruning (server/keyring/policy.h): the retention and its default, its
// validation, that only DESTROYED keys are ever pruned, the cap on tombstones, what a pruned
// key's tokens get, and that the scheduler audits each prune.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/engine/scheduler.h"
#include "server/keyring/keyring.h"
#include "server/keyring/lifecycle.h"
#include "server/keyring/policy.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/signer.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::keyring {
namespace {

using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsNull;
using ::testing::UnorderedElementsAre;

using format::VerifyStatus;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);
constexpr absl::Duration kDay = absl::Hours(24);

// A key in `state` created at `created`, its state last changed at `changed`.
std::shared_ptr<const Key> MakeKey(uint32_t id, KeyState state, absl::Time created,
                                   absl::Time changed) {
  crypto::SecretBytes material;
  if (state != v1::DESTROYED) material = crypto::RandomSecret(32);
  return *Key::New({id, v1::HMAC_SHA256, state, created, changed}, std::move(material));
}

v1::KeyringPolicy RetentionPolicy(int64_t retention_seconds) {
  v1::KeyringPolicy p;
  p.mutable_tombstone_retention()->set_seconds(retention_seconds);
  return p;
}

std::vector<uint32_t> Ids(const Keyring& k) {
  std::vector<uint32_t> ids;
  for (const auto& key : k.keys()) ids.push_back(key->id());
  return ids;
}

auto Prune(uint32_t id) {
  return ::testing::AllOf(Field(&Transition::operation, "prune"), Field(&Transition::key_id, id));
}

TEST(TombstoneTest, RetentionDefaultsToThirtyDays) {
  EXPECT_EQ(kDefaultTombstoneRetention, 30 * kDay);
  EXPECT_EQ(TombstoneRetention(v1::KeyringPolicy()), kDefaultTombstoneRetention);
  EXPECT_EQ(TombstoneRetention(RetentionPolicy(0)), kDefaultTombstoneRetention);
  EXPECT_EQ(TombstoneRetention(RetentionPolicy(3600)), absl::Hours(1));
  EXPECT_EQ(TombstoneRetention(RetentionPolicy(3650 * 86400)), 3650 * kDay);
}

TEST(TombstoneTest, RetentionIsValidated) {
  const absl::Duration server_max = absl::Hours(24);
  EXPECT_THAT(ValidatePolicy(RetentionPolicy(0), server_max), IsOk());
  EXPECT_THAT(ValidatePolicy(RetentionPolicy(1), server_max), IsOk());
  EXPECT_THAT(ValidatePolicy(RetentionPolicy(3650 * 86400), server_max), IsOk());
  EXPECT_THAT(ValidatePolicy(RetentionPolicy(-1), server_max),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "policy.tombstone_retention: must be whole, non-negative seconds"));
  v1::KeyringPolicy frac = RetentionPolicy(60);
  frac.mutable_tombstone_retention()->set_nanos(500);
  EXPECT_THAT(ValidatePolicy(frac, server_max),
              StatusIs(absl::StatusCode::kInvalidArgument, "policy.tombstone_retention"));
}

// One key in every state, each last changed long before `kNow`; tombstones 5 and 6 were
// destroyed exactly the retention ago and one second later.
std::shared_ptr<const Keyring> EveryStateWithTwoTombstones(absl::Duration retention,
                                                           v1::KeyringPolicy policy) {
  const absl::Time old = kNow - 100 * retention;
  return *Keyring::New("ring", 7, old,
                       {MakeKey(1, v1::STAGED, old, old), MakeKey(2, v1::PRIMARY, old, old),
                        MakeKey(3, v1::ACTIVE, old, old), MakeKey(4, v1::DISABLED, old, old),
                        MakeKey(5, v1::DESTROYED, old, kNow - retention),
                        MakeKey(6, v1::DESTROYED, old, kNow - retention + absl::Seconds(1))},
                       std::move(policy));
}

TEST(TombstoneTest, OnlyDestroyedKeysPastTheRetentionArePruned) {
  // No schedule otherwise: the staged key waits, nothing is disabled or destroyed.
  v1::KeyringPolicy p = RetentionPolicy(3600);
  p.mutable_stage_lead_time()->set_seconds(3650 * 86400);
  auto ring = EveryStateWithTwoTombstones(absl::Hours(1), p);

  std::vector<Transition> applied;
  auto early = ApplyDue(*ring, kNow - absl::Seconds(1), &applied);
  ASSERT_THAT(early, IsOk());
  EXPECT_THAT(*early, IsNull());  // nothing due: no change at all
  EXPECT_TRUE(applied.empty());

  auto next = ApplyDue(*ring, kNow, &applied);  // key 5 exactly at its retention
  ASSERT_THAT(next, IsOk());
  ASSERT_NE(*next, nullptr);
  EXPECT_THAT(applied, ElementsAre(Prune(5)));
  EXPECT_THAT(Ids(**next), UnorderedElementsAre(1, 2, 3, 4, 6));
  EXPECT_EQ((*next)->revision(), ring->revision() + 1);
  EXPECT_EQ((*next)->Find(6)->state(), v1::DESTROYED);

  applied.clear();
  auto later = ApplyDue(**next, kNow + absl::Seconds(1), &applied);
  ASSERT_THAT(later, IsOk());
  ASSERT_NE(*later, nullptr);
  EXPECT_THAT(applied, ElementsAre(Prune(6)));
  EXPECT_THAT(Ids(**later), UnorderedElementsAre(1, 2, 3, 4));

  // Years later every other key is still there, whatever its state.
  applied.clear();
  auto years = ApplyDue(**later, kNow + 5 * 365 * kDay, &applied);
  ASSERT_THAT(years, IsOk());
  EXPECT_THAT(*years, IsNull());
  EXPECT_TRUE(applied.empty());
}

TEST(TombstoneTest, TheDefaultRetentionAppliesWhenThePolicySetsNone) {
  v1::KeyringPolicy p;
  p.mutable_stage_lead_time()->set_seconds(3650 * 86400);
  auto ring = EveryStateWithTwoTombstones(kDefaultTombstoneRetention, p);
  std::vector<Transition> applied;
  auto next = ApplyDue(*ring, kNow, &applied);
  ASSERT_THAT(next, IsOk());
  ASSERT_NE(*next, nullptr);
  EXPECT_THAT(applied, ElementsAre(Prune(5)));  // 6 is one second short of 30 days
  EXPECT_THAT(Ids(**next), UnorderedElementsAre(1, 2, 3, 4, 6));
}

TEST(TombstoneTest, APolicyDestroyPrunesOnlyAfterTheRetention) {
  // Disable after 1 h, destroy 1 h later, prune 1 h after that: three separate passes.
  v1::KeyringPolicy p = RetentionPolicy(3600);
  p.mutable_verify_window()->set_seconds(3600);
  p.mutable_destroy_after()->set_seconds(3600);
  auto ring =
      *Keyring::New("ring", 1, kNow,
                    {MakeKey(1, v1::PRIMARY, kNow, kNow), MakeKey(2, v1::ACTIVE, kNow, kNow)}, p);
  std::vector<std::string> ops;
  for (int hour = 1; hour <= 3; ++hour) {
    std::vector<Transition> applied;
    auto next = ApplyDue(*ring, kNow + absl::Hours(hour), &applied);
    ASSERT_THAT(next, IsOk());
    ASSERT_NE(*next, nullptr) << "hour " << hour;
    ASSERT_EQ(applied.size(), 1u);
    EXPECT_EQ(applied[0].key_id, 2u);
    ops.push_back(applied[0].operation);
    ring = *next;
  }
  EXPECT_THAT(ops, ElementsAre("disable", "destroy", "prune"));
  EXPECT_THAT(Ids(*ring), ElementsAre(1));
}

TEST(TombstoneTest, AtMostMaxTombstonesAreKeptOldestDestroyedGoFirst) {
  // Tombstones destroyed within the retention, more than the cap. Creation order is the
  // reverse of destruction order: the cap goes by destruction time.
  const int n = static_cast<int>(kMaxTombstones) + 2;
  Keyring::Keys keys = {MakeKey(1, v1::PRIMARY, kNow - kDay, kNow - kDay)};
  for (int i = 0; i < n; ++i) {
    keys.push_back(MakeKey(100 + i, v1::DESTROYED, kNow - kDay + absl::Seconds(i),
                           kNow - absl::Seconds(1 + i)));
  }
  auto ring = *Keyring::New("ring", 1, kNow - kDay, std::move(keys));  // default retention
  std::vector<Transition> applied;
  auto next = ApplyDue(*ring, kNow, &applied);
  ASSERT_THAT(next, IsOk());
  ASSERT_NE(*next, nullptr);
  EXPECT_THAT(applied, UnorderedElementsAre(Prune(100 + n - 1), Prune(100 + n - 2)));
  EXPECT_EQ((*next)->keys().size(), kMaxTombstones + 1);
  EXPECT_NE((*next)->Find(1), nullptr);
  EXPECT_NE((*next)->Find(100), nullptr);  // the newest tombstone stays
  // At the cap, nothing more is due.
  applied.clear();
  auto again = ApplyDue(**next, kNow, &applied);
  ASSERT_THAT(again, IsOk());
  EXPECT_THAT(*again, IsNull());
}

TEST(TombstoneTest, APrunedKeysTokensStayRejectedEvenIfItsIdComesBack) {
  auto ring = *Keyring::Create("ring", kNow, RetentionPolicy(3600));
  const uint32_t old_id = ring->primary().id();
  auto token = Signer(ring)->Sign("p", "", kNow, absl::Hours(1))->token;
  ring = *Rotate(*ring, kNow, /*promote=*/true, nullptr);
  ring = *Disable(*ring, old_id, kNow);
  ring = *Destroy(*ring, old_id, kNow);
  EXPECT_EQ(Signer(ring)->Verify(token, "", kNow).status, VerifyStatus::kKeyDisabled);

  std::vector<Transition> applied;
  auto pruned = ApplyDue(*ring, kNow + absl::Hours(1), &applied);
  ASSERT_THAT(pruned, IsOk());
  ASSERT_NE(*pruned, nullptr);
  EXPECT_THAT(applied, ElementsAre(Prune(old_id)));
  EXPECT_EQ((*pruned)->Find(old_id), nullptr);
  EXPECT_EQ(Signer(*pruned)->Verify(token, "", kNow).status, VerifyStatus::kUnknownKey);

  // A later key drawn with the same id (NewKeyId may return it again) has other material:
  // the old token fails its MAC.
  Keyring::Keys keys = (*pruned)->keys();
  keys.push_back(*Key::Generate(old_id, v1::HMAC_SHA256, v1::ACTIVE, kNow + absl::Hours(2)));
  auto reused = (*pruned)->Next(std::move(keys));
  ASSERT_THAT(reused, IsOk());
  EXPECT_EQ(Signer(*reused)->Verify(token, "", kNow).status, VerifyStatus::kBadSignature);
}

class CapturingAudit : public engine::AuditLog {
 public:
  void Record(const engine::AuditEvent& e) override { events.push_back(e); }
  std::vector<engine::AuditEvent> events;
};

TEST(TombstoneTest, TheSchedulerPrunesKeyringsWithoutASchedule) {
  // A manual-only keyring (no rotation, no window): the operator destroys a key by hand;
  // the scheduler prunes its tombstone after the retention and audits it.
  FakeClock clock(kNow);
  CapturingAudit audit;
  engine::EngineOptions opts;
  opts.audit_log = &audit;
  auto e = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                *store::Sealer::New(crypto::RandomSecret(32)), &clock, opts);
  ASSERT_THAT(e->CreateKeyring("op", "ring", RetentionPolicy(7 * 86400)), IsOk());
  auto r = e->Rotate("op", "ring", /*promote_now=*/true);
  ASSERT_THAT(r, IsOk());
  const uint32_t old_id = r->previous_primary_key_id;
  ASSERT_THAT(e->Disable("op", "ring", old_id), IsOk());
  ASSERT_THAT(e->Destroy("op", "ring", old_id), IsOk());
  clock.Advance(7 * kDay - absl::Seconds(1));
  EXPECT_EQ(engine::Tick(*e), 0);
  EXPECT_EQ((*e->Get("ring"))->Find(old_id)->state(), v1::DESTROYED);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(engine::Tick(*e), 1);
  auto ring = *e->Get("ring");
  EXPECT_EQ(ring->Find(old_id), nullptr);
  EXPECT_THAT(Ids(*ring), ElementsAre(r->key_id));
  const engine::AuditEvent& last = audit.events.back();
  EXPECT_EQ(last.caller, "scheduler");
  EXPECT_EQ(last.operation, "prune");
  EXPECT_EQ(last.keyring, "ring");
  EXPECT_EQ(last.key_id, old_id);
  EXPECT_EQ(last.revision, ring->revision());
  EXPECT_EQ(last.outcome, "ok");
}

}  // namespace
}  // namespace sessiontoken::keyring
