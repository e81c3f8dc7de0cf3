// The key state machine: every legal and illegal transition, and scheduled transitions on
// a fake clock.
#include "server/keyring/lifecycle.h"

#include <map>
#include <random>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/engine/scheduler.h"
#include "server/format/key_macs.h"
#include "server/keyring/keyring.h"
#include "server/keyring/policy.h"
#include "server/keyring/stored_form.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/signer.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::keyring {
namespace {

using ::sessiontoken::testing::IsOk;
using ::testing::Not;

using format::VerifyOptions;
using format::VerifyResult;
using format::VerifyStatus;

constexpr int64_t kT0 = 1800000000;
const absl::Time kNow = absl::FromUnixSeconds(kT0);

std::shared_ptr<const Key> MakeKey(uint32_t id, KeyState state, int64_t created) {
  KeyMetadata md{id, v1::HMAC_SHA256, state, absl::FromUnixSeconds(created),
                 absl::FromUnixSeconds(created)};
  crypto::SecretBytes material;
  if (state != v1::DESTROYED) material = crypto::SecretBytes::CopyFrom(std::string(32, 'k'));
  return *Key::New(md, std::move(material));
}

// One key in every state: ids 1..5 = STAGED, PRIMARY, ACTIVE, DISABLED, DESTROYED.
std::shared_ptr<const Keyring> AllStates() {
  return *Keyring::New("ring", 10, absl::FromUnixSeconds(kT0 - 100),
                       {MakeKey(1, v1::STAGED, kT0 - 1), MakeKey(2, v1::PRIMARY, kT0 - 2),
                        MakeKey(3, v1::ACTIVE, kT0 - 3), MakeKey(4, v1::DISABLED, kT0 - 4),
                        MakeKey(5, v1::DESTROYED, kT0 - 5)});
}

enum class Op { kPromote, kDisable, kEnable, kDestroy };

absl::StatusOr<std::shared_ptr<const Keyring>> Apply(const Keyring& k, Op op, uint32_t id) {
  switch (op) {
    case Op::kPromote:
      return Promote(k, id, kNow);
    case Op::kDisable:
      return Disable(k, id, kNow);
    case Op::kEnable:
      return Enable(k, id, kNow);
    case Op::kDestroy:
      return Destroy(k, id, kNow);
  }
  return absl::InternalError("unreachable");
}

TEST(LifecycleTest, EveryTransitionFromEveryState) {
  const KeyState states[] = {v1::STAGED, v1::PRIMARY, v1::ACTIVE, v1::DISABLED, v1::DESTROYED};
  // expected[op][from] = resulting state, or KEY_STATE_UNSPECIFIED when illegal.
  const std::map<Op, std::map<KeyState, KeyState>> expected = {
      {Op::kPromote, {{v1::STAGED, v1::PRIMARY}, {v1::ACTIVE, v1::PRIMARY}}},
      {Op::kDisable, {{v1::STAGED, v1::DISABLED}, {v1::ACTIVE, v1::DISABLED}}},
      {Op::kEnable, {{v1::DISABLED, v1::ACTIVE}}},
      {Op::kDestroy, {{v1::DISABLED, v1::DESTROYED}}},
  };
  auto ring = AllStates();
  int legal = 0, illegal = 0;
  for (const auto& [op, table] : expected) {
    for (uint32_t id = 1; id <= 5; ++id) {
      const KeyState from = states[id - 1];
      auto next = Apply(*ring, op, id);
      auto it = table.find(from);
      SCOPED_TRACE(absl::StrCat("op ", static_cast<int>(op), " from ", v1::KeyState_Name(from)));
      if (it == table.end()) {
        ++illegal;
        ASSERT_THAT(next, Not(IsOk()));
        EXPECT_TRUE(absl::IsFailedPrecondition(next.status())) << next.status();
        EXPECT_TRUE(absl::StrContains(next.status().message(), v1::KeyState_Name(from)));
        continue;
      }
      ++legal;
      ASSERT_THAT(next, IsOk()) << next.status();
      EXPECT_EQ((*next)->revision(), 11u);
      EXPECT_EQ((*next)->Find(id)->state(), it->second);
      EXPECT_EQ((*next)->Find(id)->metadata().state_changed_at, kNow);
      // Exactly one primary; a promotion demotes the old primary to ACTIVE.
      int primaries = 0;
      for (const auto& k : (*next)->keys()) primaries += k->state() == v1::PRIMARY;
      EXPECT_EQ(primaries, 1);
      if (op == Op::kPromote) {
        EXPECT_EQ((*next)->primary().id(), id);
        EXPECT_EQ((*next)->Find(2)->state(), v1::ACTIVE);
      }
    }
  }
  EXPECT_EQ(legal, 6);
  EXPECT_EQ(illegal, 14);
  // The receiver never changes.
  EXPECT_EQ(ring->revision(), 10u);
  EXPECT_EQ(ring->Find(1)->state(), v1::STAGED);
  EXPECT_EQ(ring->primary().id(), 2u);
}

TEST(LifecycleTest, UnknownKeyIsNotFound) {
  auto ring = AllStates();
  for (Op op : {Op::kPromote, Op::kDisable, Op::kEnable, Op::kDestroy}) {
    EXPECT_TRUE(absl::IsNotFound(Apply(*ring, op, 99).status()));
  }
}

TEST(LifecycleTest, DestroyWipesMaterialAndKeepsTombstone) {
  auto ring = AllStates();
  auto next = Destroy(*ring, 4, kNow);
  ASSERT_THAT(next, IsOk());
  const Key* k = (*next)->Find(4);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->state(), v1::DESTROYED);
  EXPECT_TRUE(k->material().empty());
  EXPECT_THAT(format::KeyMacs::New(**next)->Find(4), ::testing::IsNull());  // no MAC either
  EXPECT_EQ(k->metadata().created_at, absl::FromUnixSeconds(kT0 - 4));
  // The tombstone survives storage, and its id is never reused.
  v1::StoredKeyring stored;
  ToStored(*(*next), &stored);
  auto back = FromStored(&stored);
  ASSERT_THAT(back, IsOk()) << back.status();
  EXPECT_EQ((*back)->Find(4)->state(), v1::DESTROYED);
}

TEST(LifecycleTest, DisabledAndDestroyedKeysRejectTheirTokens) {
  auto ring = *Keyring::Create("ring", kNow);
  auto token = Signer(ring)->Sign("p", "", kNow, absl::Hours(1))->token;
  const uint32_t old_id = ring->primary().id();
  uint32_t new_id = 0;
  ring = *Rotate(*ring, kNow, /*promote=*/true, &new_id);
  EXPECT_EQ(Signer(ring)->Verify(token, "", kNow).status, VerifyStatus::kValid);
  ring = *Disable(*ring, old_id, kNow);
  EXPECT_EQ(Signer(ring)->Verify(token, "", kNow).status, VerifyStatus::kKeyDisabled);
  ring = *Enable(*ring, old_id, kNow);  // reversible
  EXPECT_EQ(Signer(ring)->Verify(token, "", kNow).status, VerifyStatus::kValid);
  EXPECT_THAT(Destroy(*ring, old_id, kNow), Not(IsOk()));  // must be disabled first
  ring = *Disable(*ring, old_id, kNow);
  ring = *Destroy(*ring, old_id, kNow);
  EXPECT_EQ(Signer(ring)->Verify(token, "", kNow).status, VerifyStatus::kKeyDisabled);
}

TEST(LifecycleTest, StagedKeysVerifyButDoNotSign) {
  auto ring = *Keyring::Create("ring", kNow);
  const uint32_t primary = ring->primary().id();
  uint32_t staged = 0;
  ring = *Rotate(*ring, kNow, /*promote=*/false, &staged);
  EXPECT_EQ(ring->Find(staged)->state(), v1::STAGED);
  EXPECT_EQ(ring->primary().id(), primary);
  EXPECT_EQ(Signer(ring)->Sign("p", "", kNow, absl::Hours(1))->key_id, primary);
}

TEST(LifecycleTest, ImportStates) {
  auto ring = *Keyring::Create("ring", kNow);
  const uint32_t primary = ring->primary().id();
  uint32_t id = 0;
  auto active =
      Import(*ring, v1::HMAC_SHA1_FLASK, "flask-secret", v1::KEY_STATE_UNSPECIFIED, kNow, &id);
  ASSERT_THAT(active, IsOk()) << active.status();
  EXPECT_EQ((*active)->Find(id)->state(), v1::ACTIVE);  // the default: verify-only legacy key
  EXPECT_EQ((*active)->primary().id(), primary);
  auto as_primary = Import(*ring, v1::HMAC_SHA256, std::string(32, 's'), v1::PRIMARY, kNow, &id);
  ASSERT_THAT(as_primary, IsOk());
  EXPECT_EQ((*as_primary)->primary().id(), id);
  EXPECT_EQ((*as_primary)->Find(primary)->state(), v1::ACTIVE);
  EXPECT_THAT(Import(*ring, v1::HMAC_SHA256, "x", v1::DISABLED, kNow, &id), Not(IsOk()));
  EXPECT_THAT(Import(*ring, v1::HMAC_SHA256, "", v1::ACTIVE, kNow, &id), Not(IsOk()));
  EXPECT_THAT(Import(*ring, v1::HMAC_SHA256, "short", v1::ACTIVE, kNow, &id), Not(IsOk()));
  EXPECT_THAT(Import(*ring, v1::ALGORITHM_UNSPECIFIED, "x", v1::ACTIVE, kNow, &id), Not(IsOk()));
  // The same secret twice would make "disable the imported key" ambiguous.
  auto twice = Import(*(*active), v1::HMAC_SHA1_FLASK, "flask-secret", v1::ACTIVE, kNow, &id);
  EXPECT_TRUE(absl::IsAlreadyExists(twice.status())) << twice.status();
  EXPECT_FALSE(absl::StrContains(twice.status().message(), "flask-secret"));
}

v1::KeyringPolicy Policy(int64_t period, int64_t lead, int64_t window, int64_t destroy,
                         int64_t max_ttl) {
  v1::KeyringPolicy p;
  p.mutable_rotation_period()->set_seconds(period);
  p.mutable_stage_lead_time()->set_seconds(lead);
  p.mutable_verify_window()->set_seconds(window);
  p.mutable_destroy_after()->set_seconds(destroy);
  p.mutable_max_token_ttl()->set_seconds(max_ttl);
  return p;
}

TEST(PolicyTest, Validation) {
  const absl::Duration server_max = absl::Hours(24);
  EXPECT_THAT(ValidatePolicy(Policy(0, 0, 0, 0, 0), server_max), IsOk());
  EXPECT_THAT(ValidatePolicy(Policy(3600, 600, 7200, 3600, 7200), server_max), IsOk());
  // Tokens must not outlive their key.
  auto s = ValidatePolicy(Policy(3600, 0, 7200, 0, 7201), server_max);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_TRUE(absl::StrContains(s.message(), "max_token_ttl"));
  // max_token_ttl 0 means the server's limit, which must then fit the window too.
  EXPECT_THAT(ValidatePolicy(Policy(3600, 0, 7200, 0, 0), server_max), Not(IsOk()));
  EXPECT_THAT(ValidatePolicy(Policy(3600, 3600, 0, 0, 0), server_max),
              Not(IsOk()));  // lead >= period
  EXPECT_THAT(ValidatePolicy(Policy(-1, 0, 0, 0, 0), server_max), Not(IsOk()));
  EXPECT_THAT(ValidatePolicy(Policy(0, 0, 0, 0, 90000), server_max), Not(IsOk()));  // > server max
  v1::KeyringPolicy frac = Policy(10, 0, 0, 0, 0);
  frac.mutable_rotation_period()->set_nanos(5);
  EXPECT_THAT(ValidatePolicy(frac, server_max), Not(IsOk()));
}

// With rotation period P, stage lead time L and verify window W >= max TTL, every token
// issued at any time verifies VALID until its own expiry, across many automatic rotations.
void RunPolicySimulation(int64_t lead) {
  keyring::FakeClock clock(kNow);
  engine::EngineOptions opts;
  opts.limits.max_ttl = absl::Hours(24);
  auto e = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                *store::Sealer::New(crypto::RandomSecret(32)), &clock, opts);
  const int64_t P = 3600, W = 2 * 3600, D = 1800, max_ttl = 2 * 3600;
  ASSERT_THAT(e->CreateKeyring("test", "ring", Policy(P, lead, W, D, max_ttl)), IsOk());
  struct Issued {
    std::string token;
    int64_t exp;
  };
  std::vector<Issued> issued;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int64_t> ttl_dist(1, max_ttl);
  int rotations = 0, checks = 0;
  uint32_t last_primary = (*e->Get("ring"))->primary().id();
  for (int step = 0; step < 24 * 12; ++step) {  // 24 hours in 5-minute steps
    clock.Advance(absl::Minutes(5));
    engine::Tick(*e);
    const int64_t now = absl::ToUnixSeconds(clock.Now());
    auto ring = *e->Get("ring");
    if (ring->primary().id() != last_primary) {
      ++rotations;
      last_primary = ring->primary().id();
    }
    for (int i = 0; i < 3; ++i) {
      auto s = e->Sign("ring", "p", "", absl::Seconds(ttl_dist(rng)));
      ASSERT_THAT(s, IsOk()) << s.status();
      issued.push_back({s->token, s->expires_at});
    }
    for (const Issued& t : issued) {
      auto v = e->Verify("ring", t.token, "");
      ASSERT_THAT(v, IsOk());
      if (now < t.exp) {
        ++checks;
        ASSERT_EQ(v->status, VerifyStatus::kValid) << "step " << step;
      } else {
        ASSERT_NE(v->status, VerifyStatus::kValid) << "step " << step;
      }
    }
    // Old keys are disabled and then destroyed; tombstones stay.
    for (const auto& k : ring->keys()) {
      if (k->state() == v1::ACTIVE) {
        EXPECT_LE(now - absl::ToUnixSeconds(k->metadata().state_changed_at), W + 300);
      }
    }
  }
  EXPECT_GE(rotations, 20);
  EXPECT_GT(checks, 1000);
  auto ring = *e->Get("ring");
  int destroyed = 0;
  for (const auto& k : ring->keys()) destroyed += k->state() == v1::DESTROYED;
  EXPECT_GE(destroyed, 15);
  for (const auto& k : ring->keys()) {
    if (k->state() == v1::DESTROYED) {
      EXPECT_TRUE(k->material().empty());
    }
  }
}

TEST(PolicyTest, TokensVerifyUntilExpiryAcrossAutomaticRotations) { RunPolicySimulation(0); }
TEST(PolicyTest, SameWithStageLeadTime) { RunPolicySimulation(600); }

TEST(PolicyTest, StagedKeyIsPromotedAfterLeadTime) {
  keyring::FakeClock clock(kNow);
  auto e = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                *store::Sealer::New(crypto::RandomSecret(32)), &clock, {});
  ASSERT_THAT(e->CreateKeyring("t", "ring", Policy(0, 600, 0, 0, 0)), IsOk());
  auto r = e->Rotate("t", "ring");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->keyring->Find(r->key_id)->state(), v1::STAGED);
  clock.Advance(absl::Seconds(599));
  EXPECT_EQ(engine::Tick(*e), 0);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(engine::Tick(*e), 1);
  EXPECT_EQ((*e->Get("ring"))->primary().id(), r->key_id);
  // promote_now skips the lead time.
  auto now = e->Rotate("t", "ring", /*promote_now=*/true);
  EXPECT_EQ(now->keyring->primary().id(), now->key_id);
}

class CapturingAudit : public engine::AuditLog {
 public:
  void Record(const engine::AuditEvent& e) override { events.push_back(e); }
  std::vector<engine::AuditEvent> events;
};

TEST(AuditTest, EveryAdminOperationIsRecorded) {
  keyring::FakeClock clock(kNow);
  CapturingAudit audit;
  engine::EngineOptions opts;
  opts.audit_log = &audit;
  auto e = *engine::Engine::New(std::make_unique<store::MemoryStore>(),
                                *store::Sealer::New(crypto::RandomSecret(32)), &clock, opts);
  auto r = e->Rotate("alice", "default");
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(e->Destroy("bob", "default", r->previous_primary_key_id), Not(IsOk()));
  ASSERT_THAT(e->Import("carol", "default", v1::HMAC_SHA1_FLASK, "topsecret", v1::ACTIVE), IsOk());
  ASSERT_EQ(audit.events.size(), 3u);
  EXPECT_EQ(audit.events[0].caller, "alice");
  EXPECT_EQ(audit.events[0].operation, "rotate");
  EXPECT_EQ(audit.events[0].key_id, r->key_id);
  EXPECT_EQ(audit.events[0].revision, 2u);
  EXPECT_EQ(audit.events[0].outcome, "ok");
  EXPECT_EQ(audit.events[1].operation, "destroy");
  EXPECT_EQ(audit.events[1].revision, 0u);
  EXPECT_TRUE(absl::StartsWith(audit.events[1].outcome, "FAILED_PRECONDITION"));
  EXPECT_EQ(audit.events[2].operation, "import");
  for (const auto& ev : audit.events) {
    EXPECT_FALSE(absl::StrContains(engine::AuditEventToJson(ev), "topsecret"));
  }
}

TEST(AuditTest, JsonLineEscapes) {
  engine::AuditEvent ev;
  ev.time = absl::FromUnixSeconds(0);
  ev.caller = "a\"b\\c\n";
  ev.operation = "rotate";
  ev.keyring = "k";
  ev.key_id = 7;
  ev.revision = 9;
  ev.outcome = "ok\x01";
  EXPECT_EQ(engine::AuditEventToJson(ev),
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"caller\":\"a\\\"b\\\\c\\n\","
            "\"operation\":\"rotate\",\"keyring\":\"k\",\"key_id\":7,\"revision\":9,"
            "\"outcome\":\"ok\\u0001\"}");
}

}  // namespace
}  // namespace sessiontoken::keyring
