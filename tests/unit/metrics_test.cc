// The metrics layer without gRPC: key usage counting through the engine's observer, the
// usage windows, in-use warnings, RPC statistics, the exported families and the listener's
// address checks.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/keyring/policy.h"
#include "server/metrics/collector.h"
#include "server/metrics/key_usage.h"
#include "server/metrics/listener.h"
#include "server/metrics/rpc_stats.h"
#include "server/metrics/usage_audit.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::metrics {
namespace {

using format::VerifyStatus;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr int Idx(VerifyStatus s) { return static_cast<int>(s); }

class RecordingAudit final : public engine::AuditLog {
 public:
  void Record(const engine::AuditEvent& e) override { events.push_back(e); }
  std::vector<engine::AuditEvent> events;
};

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest()
      : clock_(absl::FromUnixSeconds(1800000000)),
        usage_(clock_.Now()),
        audit_(&recorded_, &usage_) {
    engine::EngineOptions o;
    o.observer = &usage_;
    o.audit_log = &audit_;
    auto sealer = store::Sealer::New(crypto::RandomSecret(32));
    auto e =
        engine::Engine::New(std::make_unique<store::MemoryStore>(), *std::move(sealer), &clock_, o);
    EXPECT_THAT(e, IsOk());
    engine_ = *std::move(e);
  }

  std::string Sign(absl::string_view payload = "p", absl::string_view audience = "web") {
    auto s = engine_->Sign("default", payload, audience, absl::Minutes(30));
    EXPECT_THAT(s, IsOk());
    return s.ok() ? s->token : "";
  }
  VerifyStatus Verify(absl::string_view token, absl::string_view audience = "web") {
    auto v = engine_->Verify("default", token, audience);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? v->status : VerifyStatus::kMalformed;
  }
  uint32_t Primary() { return (*engine_->Get("default"))->primary().id(); }
  KeyringTotals DefaultTotals() {
    for (KeyringTotals& t : usage_.Totals()) {
      if (t.keyring == "default") return t;
    }
    return {};
  }

  keyring::FakeClock clock_;
  KeyUsageRecorder usage_;
  RecordingAudit recorded_;
  UsageAuditLog audit_;
  std::unique_ptr<engine::Engine> engine_;
};

TEST_F(MetricsTest, CountsEveryResultPerKeyringAndPerExistingKey) {
  const uint32_t key = Primary();
  const std::string a = Sign("alpha"), b = Sign("beta");
  EXPECT_EQ(Verify(a), VerifyStatus::kValid);
  EXPECT_EQ(Verify(a), VerifyStatus::kValid);
  EXPECT_EQ(Verify(b), VerifyStatus::kValid);
  EXPECT_EQ(Verify(a, "other"), VerifyStatus::kWrongAudience);
  EXPECT_EQ(Verify("garbage"), VerifyStatus::kMalformed);
  EXPECT_EQ(Verify(std::string(5000, 'x')), VerifyStatus::kMalformed);  // over the size limit
  EXPECT_THAT(engine_->Verify("nope", a, "web"), StatusIs(absl::StatusCode::kNotFound));

  const KeyringTotals t = DefaultTotals();
  EXPECT_EQ(t.results[Idx(VerifyStatus::kValid)], 3u);
  EXPECT_EQ(t.results[Idx(VerifyStatus::kWrongAudience)], 1u);
  EXPECT_EQ(t.results[Idx(VerifyStatus::kMalformed)], 2u);
  EXPECT_EQ(t.refresh_recommended, 0u);
  ASSERT_EQ(t.keys.size(), 1u);
  EXPECT_EQ(t.keys[0].key_id, key);
  EXPECT_EQ(t.keys[0].results[Idx(VerifyStatus::kValid)], 3u);
  EXPECT_EQ(t.keys[0].results[Idx(VerifyStatus::kWrongAudience)], 1u);
  EXPECT_EQ(t.keys[0].results[Idx(VerifyStatus::kMalformed)], 0u);
  EXPECT_EQ(t.keys[0].signed_tokens, 2u);
  EXPECT_EQ(t.keys[0].last_verified, clock_.Now());
  // Only existing keyrings are counted.
  for (const KeyringTotals& k : usage_.Totals()) EXPECT_EQ(k.keyring, "default");
}

TEST_F(MetricsTest, TenThousandGarbageTokensAddNoLabelValues) {
  const std::string good = Sign("payload-marker");
  EXPECT_EQ(Verify(good), VerifyStatus::kValid);
  CollectorSources sources;
  sources.usage = &usage_;
  sources.process = false;
  const std::string before = Serialize(MetricsCollector(sources).Collect());
  std::vector<std::string> garbage;
  for (int i = 0; i < 10000; ++i) {
    // Shaped like native tokens naming key ids that do not exist, and plain junk.
    garbage.push_back(i % 2 ? absl::StrCat("st1.", i * 7919 + 100000, ".junk", i)
                            : absl::StrCat("junk-token-", i));
    Verify(garbage.back());
  }
  const std::string after = Serialize(MetricsCollector(sources).Collect());
  // The same series (only the counts moved).
  auto series = [](const std::string& text) {
    std::set<std::string> out;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (line.empty() || line[0] == '#') continue;
      out.insert(std::string(line.substr(0, line.rfind(' '))));
    }
    return out;
  };
  EXPECT_EQ(series(before), series(after));
  EXPECT_EQ(DefaultTotals().keys.size(), 1u);
  const KeyringTotals t = DefaultTotals();
  EXPECT_EQ(t.results[Idx(VerifyStatus::kMalformed)] + t.results[Idx(VerifyStatus::kUnknownKey)],
            10000u);
  for (const std::string& g : garbage) ASSERT_FALSE(absl::StrContains(after, g)) << g;
  EXPECT_FALSE(absl::StrContains(after, good));
  EXPECT_FALSE(absl::StrContains(after, "payload-marker"));
}

TEST_F(MetricsTest, UsageWindowsFollowTheSamples) {
  const uint32_t key = Primary();
  const absl::Time t0 = clock_.Now();
  const std::string tok = Sign();
  for (int i = 0; i < 5; ++i) Verify(tok);
  // The sampler's minutes: the five verifications are an hour old after 61 of them.
  for (int m = 1; m <= 61; ++m) usage_.Sample(t0 + absl::Minutes(m));
  clock_.Set(t0 + absl::Minutes(61));
  Verify(Sign());  // one more, now
  KeyUsage u = usage_.Usage("default", key, t0 + absl::Minutes(61));
  EXPECT_EQ(u.verified_last_hour, 1u);
  EXPECT_EQ(u.verified_last_day, 6u);
  EXPECT_EQ(u.signed_last_day, 2u);
  EXPECT_EQ(u.last_verified, t0 + absl::Minutes(61));
  // A day later (samples every minute in between), nothing is left in either window.
  for (int m = 62; m <= 61 + 25 * 60; ++m) usage_.Sample(t0 + absl::Minutes(m));
  u = usage_.Usage("default", key, t0 + absl::Minutes(61 + 25 * 60));
  EXPECT_EQ(u.verified_last_hour, 0u);
  EXPECT_EQ(u.verified_last_day, 0u);
  EXPECT_EQ(u.last_verified, t0 + absl::Minutes(61));  // the last time stays
  // A key that never saw a token.
  EXPECT_EQ(usage_.Usage("default", 999, t0).verified_last_day, 0u);
  EXPECT_EQ(usage_.Usage("nope", key, t0).last_verified, absl::InfinitePast());
}

TEST_F(MetricsTest, RotationShowsTheOldKeyThenDisableWarnsAndStopsIt) {
  const uint32_t old_key = Primary();
  const std::string old_token = Sign();
  ASSERT_THAT(engine_->Rotate("op", "default", /*promote_now=*/true), IsOk());
  auto v = engine_->Verify("default", old_token, "web");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->status, VerifyStatus::kValid);
  EXPECT_TRUE(v->refresh_recommended);
  EXPECT_EQ(DefaultTotals().refresh_recommended, 1u);
  KeyUsage u = usage_.Usage("default", old_key, clock_.Now());
  EXPECT_EQ(u.verified_last_hour, 1u);

  ASSERT_THAT(engine_->Disable("op", "default", old_key), IsOk());
  ASSERT_FALSE(recorded_.events.empty());
  const engine::AuditEvent& e = recorded_.events.back();
  EXPECT_EQ(e.operation, "disable");
  EXPECT_THAT(e.warning, HasSubstr(absl::StrCat("key ", old_key, " was still in use")));
  EXPECT_THAT(e.warning, HasSubstr("verified 1 token(s) in the last hour"));

  EXPECT_EQ(Verify(old_token), VerifyStatus::kKeyDisabled);
  u = usage_.Usage("default", old_key, clock_.Now());
  EXPECT_EQ(u.verified_last_hour, 1u);  // no new verification
  EXPECT_EQ(u.rejected_disabled_last_day, 1u);
  // Changes are counted by keyring and operation.
  std::vector<std::string> ops;
  for (const UsageAuditLog::Change& c : audit_.Changes()) {
    ops.push_back(absl::StrCat(c.keyring, "/", c.operation, "=", c.count));
  }
  EXPECT_THAT(ops, ElementsAre("default/disable=1", "default/rotate=1"));
}

TEST_F(MetricsTest, NoWarningForAKeyNotInUse) {
  const uint32_t old_key = Primary();
  ASSERT_THAT(engine_->Rotate("op", "default", true), IsOk());
  ASSERT_THAT(engine_->Disable("op", "default", old_key), IsOk());
  EXPECT_THAT(recorded_.events.back().warning, IsEmpty());
  EXPECT_THAT(engine_->Disable("op", "default", 777), Not(IsOk()));
  ASSERT_EQ(audit_.Failures().size(), 1u);
  EXPECT_EQ(audit_.Failures()[0].operation, "disable");
}

TEST(RpcStatsTest, CountsKnownMethodsAndFoldsUnknownOnes) {
  RpcStats stats({"/sessiontoken.v1.SessionTokens/Verify", "/sessiontoken.v1.KeyAdmin/Rotate"});
  const int verify = stats.Index("/sessiontoken.v1.SessionTokens/Verify");
  stats.Record(verify, 0, absl::Microseconds(70));
  stats.Record(verify, 0, absl::Milliseconds(3));
  stats.Record(verify, 3, absl::Seconds(20));
  stats.Record(stats.Index("/evil.Service/" + std::string(100, 'x')), 12, absl::Microseconds(1));
  const std::vector<MethodTotals> t = stats.Totals();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].service, "sessiontoken.v1.SessionTokens");
  EXPECT_EQ(t[0].method, "Verify");
  EXPECT_EQ(t[0].calls[0], 2u);
  EXPECT_EQ(t[0].calls[3], 1u);
  EXPECT_EQ(t[0].count(), 3u);
  EXPECT_EQ(t[0].buckets[1], 1u);                       // 70 us <= 100 us
  EXPECT_EQ(t[0].buckets[6], 1u);                       // 3 ms <= 5 ms
  EXPECT_EQ(t[0].buckets[kLatencyBuckets.size()], 1u);  // 20 s: +Inf
  EXPECT_NEAR(t[0].latency_sum_seconds, 20.00307, 1e-9);
  EXPECT_EQ(t[2].service, "unknown");
  EXPECT_EQ(t[2].calls[12], 1u);
  EXPECT_EQ(StatusCodeName(12), "UNIMPLEMENTED");
}

TEST_F(MetricsTest, EveryFamilyIsInTheCatalogAndCarriesNoSecret) {
  RpcStats rpcs({"/sessiontoken.v1.SessionTokens/Verify"});
  rpcs.Record(0, 0, absl::Microseconds(90));
  const std::string token = Sign("secret-payload-xyz");
  Verify(token);
  const uint32_t old_key = Primary();
  ASSERT_THAT(engine_->Rotate("op", "default", true), IsOk());
  v1::KeyringPolicy policy;  // the former primary (ACTIVE) is disabled in a week
  policy.mutable_verify_window()->set_seconds(7 * 86400);
  policy.mutable_max_token_ttl()->set_seconds(3600);
  ASSERT_THAT(engine_->SetPolicy("op", "default", policy), IsOk());
  CollectorSources s;
  s.engine = engine_.get();
  s.usage = &usage_;
  s.rpcs = &rpcs;
  s.changes = &audit_;
  s.store_health = [] { return StoreHealth{42, 1.5, 3}; };
  s.now = [this] { return clock_.Now(); };
  const std::vector<prometheus::MetricFamily> families = MetricsCollector(s).Collect();
  std::vector<std::string> names;
  for (const auto& f : families) {
    names.push_back(f.name);
    EXPECT_FALSE(f.metric.empty()) << f.name;
  }
  std::sort(names.begin(), names.end());
  // Every family but the failures (none happened) is exported.
  std::vector<std::string> expected = ExportedFamilyNames();
  expected.erase(
      std::remove(expected.begin(), expected.end(), "sessiontoken_keyring_change_failures_total"),
      expected.end());
  EXPECT_EQ(names, expected);
  const std::string text = Serialize(families);
  EXPECT_THAT(text, HasSubstr("sessiontoken_store_loaded_revision 42"));
  EXPECT_THAT(text, HasSubstr("sessiontoken_store_watch_restarts_total 3"));
  EXPECT_THAT(text, HasSubstr(absl::StrCat(
                        "sessiontoken_keyring_primary_key_id{keyring=\"default\"} ", Primary())));
  EXPECT_THAT(text, HasSubstr("sessiontoken_rpc_duration_seconds_bucket{service=\"sessiontoken."
                              "v1.SessionTokens\",method=\"Verify\",le=\"0.0001\"} 1"));
  EXPECT_THAT(text, HasSubstr("sessiontoken_key_next_transition_seconds{keyring=\"default\","
                              "key_id=\"" +
                              std::to_string(old_key) + "\",operation=\"disable\"} 604800"));
  EXPECT_FALSE(absl::StrContains(text, token));
  EXPECT_FALSE(absl::StrContains(text, "secret-payload-xyz"));
}

TEST(ScheduledTest, ListsEachKeysNextTransition) {
  const absl::Time t0 = absl::FromUnixSeconds(1800000000);
  v1::KeyringPolicy p;
  p.mutable_rotation_period()->set_seconds(86400);
  p.mutable_stage_lead_time()->set_seconds(3600);
  p.mutable_verify_window()->set_seconds(7200);
  auto k = keyring::Keyring::Create("shop", t0, p);
  ASSERT_THAT(k, IsOk());
  std::vector<keyring::ScheduledTransition> s = keyring::Scheduled(**k);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].operation, "stage");
  EXPECT_EQ(s[0].due, t0 + absl::Hours(23));
  std::vector<keyring::Transition> applied;
  auto next = keyring::ApplyDue(**k, t0 + absl::Hours(23), &applied);
  ASSERT_THAT(next, IsOk());
  s = keyring::Scheduled(**next);
  ASSERT_EQ(s.size(), 1u);  // the primary is not rotated again while a key is staged
  EXPECT_EQ(s[0].operation, "promote");
  EXPECT_EQ(s[0].due, t0 + absl::Hours(24));
}

TEST(ListenAddressTest, NeedsAnExplicitHostAndPort) {
  EXPECT_THAT(ValidateListenAddress("127.0.0.1:9464"), IsOk());
  EXPECT_THAT(ValidateListenAddress("[::1]:0"), IsOk());
  EXPECT_THAT(ValidateListenAddress("localhost:9464"), IsOk());
  for (const char* bad :
       {"9464", ":9464", "127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000", "::1:9464"}) {
    EXPECT_THAT(ValidateListenAddress(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(ListenerTest, ServesOnTheLoopbackPortItWasGivenAndRefusesATakenOne) {
  auto collector = std::make_shared<MetricsCollector>(CollectorSources{});
  auto l = MetricsListener::Start("127.0.0.1:0", collector);
  ASSERT_THAT(l, IsOk());
  EXPECT_GT((*l)->port(), 0);
  auto again = MetricsListener::Start(absl::StrCat("127.0.0.1:", (*l)->port()), collector);
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace sessiontoken::metrics
