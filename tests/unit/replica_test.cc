// Replicas over a real etcd on 127.0.0.1 (Engine::NewReplica + Replica): not ready before
// the first load, changes reaching the other replica, the promotion gate, the leaderless
// scheduler, lost races, a replica behind its peers, damaged and rolled-back values,
// compaction.
#include "server/engine/replica.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/app/configured_keyrings.h"
#include "server/crypto/random.h"
#include "server/engine/scheduler.h"
#include "server/store/etcd_store.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::engine {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(15);  // liveness bound, not a speed target

// Polls `done` until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = kWait) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

// One replica: its own store connection, engine and Replica, and what it logged.
struct Node {
  std::unique_ptr<store::EtcdStore> extra;  // a second connection for raw writes
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Replica> replica;
  std::shared_ptr<absl::Mutex> mu = std::make_shared<absl::Mutex>();
  std::shared_ptr<std::vector<std::string>> logs = std::make_shared<std::vector<std::string>>();
  std::string Logs() const {
    absl::MutexLock l(mu.get());
    return absl::StrJoin(*logs, "\n");
  }
  ~Node() {
    replica.reset();  // before the engine it feeds
    engine.reset();
  }
};

class ReplicaTest : public ::testing::Test {
 protected:
  ReplicaTest() : clock_(absl::FromUnixSeconds(1800000000)), kek_(crypto::RandomSecret(32)) {}
  static void SetUpTestSuite() {
    auto c = EtcdCluster::Start(1);
    ASSERT_THAT(c, IsOk());
    shared_etcd_ = std::move(*c).release();
  }
  static void TearDownTestSuite() {
    delete shared_etcd_;
    shared_etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(shared_etcd_, nullptr);
    prefix_ = absl::StrCat("/r", crypto::RandomUint32(), "/");
  }
  std::unique_ptr<store::EtcdStore> OpenStore(const std::vector<std::string>& endpoints) {
    store::EtcdOptions o;
    o.endpoints = endpoints;
    o.prefix = prefix_;
    o.request_timeout = absl::Seconds(3);
    o.attempt_timeout = absl::Seconds(1);
    o.watch_progress_interval = absl::Milliseconds(500);
    auto s = store::EtcdStore::New(std::move(o));
    return s.ok() ? *std::move(s) : nullptr;
  }
  // Starts replica `id` on `endpoints` (default: the shared etcd) and waits until ready.
  std::unique_ptr<Node> Start(const std::string& id, std::vector<std::string> endpoints = {},
                              bool wait_ready = true, absl::Duration ttl = absl::Seconds(2)) {
    if (endpoints.empty()) endpoints = shared_etcd_->endpoints();
    auto node = std::make_unique<Node>();
    node->extra = OpenStore(endpoints);
    EngineOptions options;
    options.default_keyring = "";
    options.replica_id = id;
    options.admin_wait = absl::Seconds(5);
    auto engine = Engine::NewReplica(
        OpenStore(endpoints), *store::Sealer::New(crypto::SecretBytes::CopyFrom(kek_.view())),
        &clock_, options);
    EXPECT_THAT(engine, IsOk());
    if (!engine.ok()) return nullptr;
    node->engine = *std::move(engine);
    ReplicaOptions r;
    r.replica_id = id;
    r.presence_ttl = ttl;
    r.retry_interval = absl::Milliseconds(100);
    r.log = [mu = node->mu, logs = node->logs](absl::string_view level, absl::string_view m) {
      absl::MutexLock l(mu.get());
      logs->push_back(absl::StrCat(level, " ", m));
    };
    auto replica = Replica::Start(node->engine.get(), r);
    EXPECT_THAT(replica, IsOk());
    if (!replica.ok()) return nullptr;
    node->replica = *std::move(replica);
    if (wait_ready) {
      EXPECT_TRUE(WaitFor([&] { return node->engine->ready(); }));
      // Announced: promotions by the others can count on this replica.
      EXPECT_TRUE(WaitFor([&] { return node->replica->Status().announced_revision > 0; }));
    }
    return node;
  }
  // True once `node` serves key `key_id` of `keyring` in `state`.
  static bool Has(const Node& node, const std::string& keyring, uint32_t key_id,
                  v1::KeyState state) {
    auto k = node.engine->Get(keyring);
    if (!k.ok()) return false;
    const keyring::Key* key = (*k)->Find(key_id);
    return key != nullptr && key->state() == state;
  }

  static EtcdCluster* shared_etcd_;
  keyring::FakeClock clock_;
  crypto::SecretBytes kek_;
  std::string prefix_;
};
EtcdCluster* ReplicaTest::shared_etcd_ = nullptr;

TEST_F(ReplicaTest, NotReadyUntilTheFirstLoad) {
  // A replica pointed at nothing that answers: it never loads, so it never serves.
  std::unique_ptr<Node> lost = Start("lost", {"127.0.0.1:1"}, /*wait_ready=*/false);
  ASSERT_NE(lost, nullptr);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(lost->engine->ready());
  EXPECT_THAT(lost->engine->Sign("default", "p", "", absl::Hours(1)),
              StatusIs(absl::StatusCode::kUnavailable, "not loaded"));
  EXPECT_THAT(lost->engine->Verify("default", "st1.x", ""),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(lost->engine->Rotate("admin", "default"),
              StatusIs(absl::StatusCode::kUnavailable, "nothing changed"));
  EXPECT_TRUE(lost->replica->MayBeBehind());
  EXPECT_TRUE(WaitFor(
      [&] { return lost->Logs().find("cannot announce replica lost") != std::string::npos; }));

  std::unique_ptr<Node> a = Start("a");
  EXPECT_TRUE(a->engine->ready());
  EXPECT_FALSE(a->replica->MayBeBehind());
  EXPECT_THAT(a->engine->Sign("default", "p", "", absl::Hours(1)),
              StatusIs(absl::StatusCode::kNotFound));
}

// Issue 14: a replica whose KEK does not open what the store holds never becomes ready (it
// would serve without those keyrings); startup_failure() names the fingerprint it needs.
TEST_F(ReplicaTest, FirstLoadWithAKekThatDoesNotOpenTheStoreFailsTheStart) {
  auto a = Start("a");
  ASSERT_NE(a, nullptr);
  ASSERT_THAT(a->engine->CreateKeyring("t", "shop", {}), IsOk());
  const std::string needed = a->engine->kek_fingerprint();
  kek_ = crypto::RandomSecret(32);  // a replica configured with another KEK only
  auto b = Start("b", {}, /*wait_ready=*/false);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(WaitFor([&] { return !b->engine->startup_failure().ok(); }));
  EXPECT_THAT(b->engine->startup_failure(),
              StatusIs(absl::StatusCode::kFailedPrecondition, needed));
  EXPECT_FALSE(b->engine->ready());
}

TEST_F(ReplicaTest, ChangesReachTheOtherReplicaAndRotationOnlyStages) {
  std::unique_ptr<Node> a = Start("a");
  std::unique_ptr<Node> b = Start("b");
  auto created = a->engine->CreateKeyring("admin", "shop", {});
  ASSERT_THAT(created, IsOk());
  const uint32_t first = created->key_id;
  ASSERT_TRUE(WaitFor([&] { return Has(*b, "shop", first, v1::PRIMARY); }));

  // Lead time 0: a single server promotes at once; a replica stages.
  auto rotated = a->engine->Rotate("admin", "shop");
  ASSERT_THAT(rotated, IsOk());
  EXPECT_EQ(rotated->keyring->primary().id(), first);
  EXPECT_EQ(rotated->keyring->Find(rotated->key_id)->state(), v1::STAGED);
  ASSERT_TRUE(WaitFor([&] { return Has(*b, "shop", rotated->key_id, v1::STAGED); }));

  // Any replica's scheduler promotes once every replica has loaded the key.
  ASSERT_TRUE(WaitFor([&] {
    Tick(*b->engine);
    return Has(*a, "shop", rotated->key_id, v1::PRIMARY) &&
           Has(*b, "shop", rotated->key_id, v1::PRIMARY);
  }));
  auto token = a->engine->Sign("shop", "hello", "", absl::Hours(1));
  ASSERT_THAT(token, IsOk());
  auto verified = b->engine->Verify("shop", token->token, "");
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->status, format::VerifyStatus::kValid);
  EXPECT_EQ(verified->key_id, rotated->key_id);
}

TEST_F(ReplicaTest, PromotionWaitsForEveryAnnouncedReplica) {
  std::unique_ptr<Node> a = Start("a");
  ASSERT_THAT(a->engine->CreateKeyring("admin", "shop", {}), IsOk());
  auto staged = a->engine->Rotate("admin", "shop");
  ASSERT_THAT(staged, IsOk());
  const uint32_t old_primary = staged->previous_primary_key_id;
  // A replica that has announced it loaded nothing yet (as one that just joined).
  auto ghost = a->extra->JoinPresence("ghost", absl::Seconds(30), 0);
  ASSERT_THAT(ghost, IsOk());
  auto refused = a->engine->Promote("admin", "shop", staged->key_id);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition, "ghost"));
  EXPECT_TRUE(IsPromotionWaiting(refused.status()));
  EXPECT_TRUE(IsPromotionWaiting(a->engine->ApplyDue("shop").status()));
  EXPECT_EQ((*a->engine->Get("shop"))->primary().id(), old_primary);
  // Once it has loaded the keyring's revision, the promotion goes through.
  ASSERT_THAT((*ghost)->Announce(1 << 30), IsOk());
  ASSERT_THAT(a->engine->Promote("admin", "shop", staged->key_id), IsOk());
  EXPECT_EQ((*a->engine->Get("shop"))->primary().id(), staged->key_id);
  // A replica that leaves stops holding promotions up.
  auto next = a->engine->Rotate("admin", "shop");
  ASSERT_THAT(next, IsOk());
  ASSERT_THAT((*ghost)->Announce(1), IsOk());
  EXPECT_TRUE(IsPromotionWaiting(a->engine->ApplyDue("shop").status()));
  ghost->reset();
  ASSERT_THAT(a->engine->ApplyDue("shop"), IsOk());
  EXPECT_EQ((*a->engine->Get("shop"))->primary().id(), next->key_id);
}

TEST_F(ReplicaTest, LeaderlessSchedulerAppliesEachTransitionOnce) {
  std::unique_ptr<Node> a = Start("a");
  std::unique_ptr<Node> b = Start("b");
  std::unique_ptr<Node> c = Start("c");
  v1::KeyringPolicy policy;
  policy.mutable_rotation_period()->set_seconds(3600);
  ASSERT_THAT(a->engine->CreateKeyring("admin", "shop", policy), IsOk());
  for (Node* n : {b.get(), c.get()}) {
    ASSERT_TRUE(WaitFor([&] { return n->engine->Get("shop").ok(); }));
  }
  constexpr int kPeriods = 12;
  for (int p = 1; p <= kPeriods; ++p) {
    clock_.Advance(absl::Hours(1));
    // Every replica ticks at once, over and over, until the rotation is promoted.
    ASSERT_TRUE(WaitFor([&] {
      std::vector<std::thread> ticks;
      for (Node* n : {a.get(), b.get(), c.get()}) {
        ticks.emplace_back([n] { Tick(*n->engine); });
      }
      for (auto& t : ticks) t.join();
      auto k = a->engine->Get("shop");
      return k.ok() && (*k)->keys().size() == static_cast<size_t>(p + 1) &&
             (*k)->primary().metadata().created_at == clock_.Now();
    })) << "period "
        << p;
    // Nothing more is due: further ticks change nothing.
    for (Node* n : {a.get(), b.get(), c.get()}) Tick(*n->engine);
    ASSERT_EQ((*a->engine->Get("shop"))->keys().size(), static_cast<size_t>(p + 1));
  }
}

TEST_F(ReplicaTest, ConcurrentChangesOnEveryReplicaLoseNothing) {
  std::unique_ptr<Node> a = Start("a");
  std::unique_ptr<Node> b = Start("b");
  ASSERT_THAT(a->engine->CreateKeyring("admin", "shop", {}), IsOk());
  ASSERT_TRUE(WaitFor([&] { return b->engine->Get("shop").ok(); }));
  std::atomic<int> acknowledged{0};
  std::vector<uint32_t> ids[2];
  std::vector<std::string> failures[2];
  std::vector<std::thread> writers;
  Node* nodes[2] = {a.get(), b.get()};
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 10; ++i) {
        auto r = nodes[w]->engine->Rotate("admin", "shop", /*promote_now=*/true);
        if (r.ok()) {
          ids[w].push_back(r->key_id);
          acknowledged++;
        } else {
          failures[w].push_back(r.status().ToString());
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  for (const auto& f : failures) {
    for (const std::string& s : f) EXPECT_THAT(s, HasSubstr("ABORTED")) << s;
  }
  EXPECT_GE(acknowledged.load(), 10);  // retries on the fresh value win most races
  auto final_ring = a->extra->Get("shop");
  ASSERT_THAT(final_ring, IsOk());
  ASSERT_TRUE(WaitFor([&] {
    return (*a->engine->Get("shop"))->keys().size() == static_cast<size_t>(1 + acknowledged.load());
  }));
  for (const auto& list : ids) {
    for (uint32_t id : list) EXPECT_NE((*a->engine->Get("shop"))->Find(id), nullptr) << id;
  }
}

TEST_F(ReplicaTest, DamagedOrRolledBackValuesNeverReplaceTheLastGoodCopy) {
  std::unique_ptr<Node> a = Start("a");
  std::unique_ptr<Node> b = Start("b");
  auto created = a->engine->CreateKeyring("admin", "shop", {});
  ASSERT_THAT(created, IsOk());
  auto token = a->engine->Sign("shop", "hello", "", absl::Hours(1));
  ASSERT_THAT(token, IsOk());
  auto old_value = a->extra->Get("shop");  // revision 1, sealed
  ASSERT_THAT(old_value, IsOk());
  auto rotated = a->engine->Rotate("admin", "shop", /*promote_now=*/true);
  ASSERT_THAT(rotated, IsOk());
  ASSERT_TRUE(WaitFor([&] { return Has(*b, "shop", rotated->key_id, v1::PRIMARY); }));

  // Rolled back: an older sealed value written over the newer one.
  auto current = a->extra->Get("shop");
  ASSERT_THAT(a->extra->Put("shop", old_value->data, current->version), IsOk());
  ASSERT_TRUE(WaitFor([&] { return b->Logs().find("rolled back") != std::string::npos; }));
  // Damaged: bytes that are not a sealed keyring.
  current = a->extra->Get("shop");
  ASSERT_THAT(a->extra->Put("shop", "not a sealed keyring", current->version), IsOk());
  ASSERT_TRUE(WaitFor([&] { return b->Logs().find("does not open") != std::string::npos; }));
  for (Node* n : {a.get(), b.get()}) {
    EXPECT_TRUE(Has(*n, "shop", rotated->key_id, v1::PRIMARY));
    auto v = n->engine->Verify("shop", token->token, "");
    ASSERT_THAT(v, IsOk());
    EXPECT_EQ(v->status, format::VerifyStatus::kValid);
  }
  // A change over a damaged value is refused: nothing overwrites what does not open.
  EXPECT_THAT(a->engine->Rotate("admin", "shop"), StatusIs(absl::StatusCode::kDataLoss));
  // A new replica starting now loads the other keyrings and reports this one.
  ASSERT_THAT(a->engine->CreateKeyring("admin", "other", {}), IsOk());
  std::unique_ptr<Node> c = Start("c");
  EXPECT_TRUE(c->engine->Get("other").ok());
  EXPECT_THAT(c->engine->Get("shop"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(c->Logs(), HasSubstr("shop"));
}

// Replicas starting together apply the config file's keyrings: whoever creates one first,
// every start succeeds and the keyring ends with the configured policy.
TEST_F(ReplicaTest, ReplicasStartingTogetherApplyTheConfiguredKeyrings) {
  std::unique_ptr<Node> a = Start("a");
  std::unique_ptr<Node> b = Start("b");
  std::unique_ptr<Node> c = Start("c");
  v1::KeyringConfig shop;
  shop.set_name("shop");
  shop.mutable_policy()->mutable_max_token_ttl()->set_seconds(600);
  std::vector<absl::Status> results(3);
  std::vector<std::thread> starts;
  Node* nodes[3] = {a.get(), b.get(), c.get()};
  for (int i = 0; i < 3; ++i) {
    starts.emplace_back(
        [&, i] { results[i] = app::ApplyConfiguredKeyrings(*nodes[i]->engine, {shop}); });
  }
  for (auto& t : starts) t.join();
  for (const absl::Status& s : results) EXPECT_THAT(s, IsOk());
  for (Node* n : nodes) {
    ASSERT_TRUE(WaitFor([&] { return n->engine->Get("shop").ok(); }));
    EXPECT_EQ((*n->engine->Get("shop"))->policy().max_token_ttl().seconds(), 600);
  }
}

// A replica whose lease cannot be proven (its etcd is gone) answers UNAVAILABLE for keys
// it does not know, keeps serving those it knows, and fails admin calls clearly.
TEST_F(ReplicaTest, ReplicaCutOffFromEtcdSaysItMayBeBehind) {
  auto own = EtcdCluster::Start(1);
  ASSERT_THAT(own, IsOk());
  EtcdCluster& etcd = **own;
  std::unique_ptr<Node> a = Start("a", etcd.endpoints());
  ASSERT_THAT(a->engine->CreateKeyring("admin", "shop", {}), IsOk());
  ASSERT_THAT(
      a->engine->Import("admin", "shop", v1::HMAC_SHA1_FLASK, "flask secret known", v1::ACTIVE),
      IsOk());
  auto known = a->engine->Sign("shop", "hello", "", absl::Hours(1));
  ASSERT_THAT(known, IsOk());
  // Tokens from keys this replica has never seen (another keyring's, same name).
  auto elsewhere =
      Engine::New(std::make_unique<store::MemoryStore>(),
                  *store::Sealer::New(crypto::SecretBytes::CopyFrom(kek_.view())), &clock_, {});
  ASSERT_THAT(elsewhere, IsOk());
  ASSERT_THAT((*elsewhere)->CreateKeyring("admin", "shop", {}), IsOk());
  auto unknown = (*elsewhere)->Sign("shop", "hello", "", absl::Hours(1));
  ASSERT_THAT(unknown, IsOk());
  ASSERT_THAT(
      (*elsewhere)
          ->Import("admin", "shop", v1::HMAC_SHA1_FLASK, "another flask secret", v1::PRIMARY),
      IsOk());
  auto flask_unknown = (*elsewhere)->Sign("shop", "{}", "", absl::Hours(1));
  ASSERT_THAT(flask_unknown, IsOk());

  auto verify = [&](const std::string& token) { return a->engine->Verify("shop", token, ""); };
  ASSERT_THAT(verify(unknown->token), IsOk());
  EXPECT_EQ(verify(unknown->token)->status, format::VerifyStatus::kUnknownKey);
  EXPECT_EQ(verify(flask_unknown->token)->status, format::VerifyStatus::kBadSignature);
  // The watch's state is reported from its first stream on, not only after a loss.
  EXPECT_TRUE(WaitFor([&] { return a->replica->Status().watch_connected; })) << a->Logs();

  etcd.Kill(0);
  ASSERT_TRUE(WaitFor([&] { return a->replica->MayBeBehind(); }));
  EXPECT_THAT(verify(unknown->token), StatusIs(absl::StatusCode::kUnavailable, "catching up"));
  EXPECT_THAT(verify(flask_unknown->token), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(verify(known->token)->status, format::VerifyStatus::kValid);
  EXPECT_EQ(verify("st1.garbage")->status, format::VerifyStatus::kMalformed);
  EXPECT_THAT(a->engine->Sign("shop", "still signing", "", absl::Hours(1)), IsOk());
  EXPECT_THAT(a->engine->Rotate("admin", "shop"),
              StatusIs(absl::StatusCode::kUnavailable, "etcd unreachable"));
  ReplicaStatus status = a->replica->Status();
  EXPECT_FALSE(status.lease_live);
  ASSERT_TRUE(WaitFor([&] { return a->Logs().find("not confirmed fresh") != std::string::npos; }));
  EXPECT_FALSE(a->replica->Status().watch_connected);
  EXPECT_THAT(a->Logs(), HasSubstr("store watch lost"));

  // etcd back. It restores the lease with a fresh TTL, so the replica's keepalive works again
  // (had the lease expired, the replica would reload and join again). Under load the
  // restarted etcd can be slow to answer a new connection: the client must give it time
  // (once it gave 100 ms and this replica stayed cut off; EtcdStoreTest has the exact case).
  ASSERT_THAT(etcd.Restart(0), IsOk());
  ASSERT_TRUE(WaitFor([&] { return !a->replica->MayBeBehind(); }, absl::Seconds(30))) << a->Logs();
  EXPECT_TRUE(WaitFor([&] { return a->replica->Status().watch_connected; })) << a->Logs();
  EXPECT_EQ(verify(unknown->token)->status, format::VerifyStatus::kUnknownKey);
  EXPECT_THAT(a->engine->Rotate("admin", "shop"), IsOk());
  EXPECT_TRUE(WaitFor([&] { return a->Logs().find("fresh again") != std::string::npos; }))
      << a->Logs();
}

// A replica whose watch lost history (compaction while it was away) reloads everything.
TEST_F(ReplicaTest, CompactedWatchReloads) {
  auto own = EtcdCluster::Start(3);
  ASSERT_THAT(own, IsOk());
  EtcdCluster& etcd = **own;
  std::unique_ptr<Node> a = Start("a", {etcd.endpoint(1), etcd.endpoint(2)});
  // A lease long enough to outlast the outage: the watch alone must notice.
  std::unique_ptr<Node> b = Start("b", {etcd.endpoint(0)}, true, absl::Seconds(30));
  ASSERT_THAT(a->engine->CreateKeyring("admin", "shop", {}), IsOk());
  ASSERT_TRUE(WaitFor([&] { return b->engine->Get("shop").ok(); }));
  etcd.Kill(0);  // b's only member: b's watch loses its stream
  // If m0 led, a's writes wait for the election; under load that can outlast a's 3 s store
  // deadline (seen once under ctest -j2). This test is about the watch, not the failover.
  ASSERT_TRUE(WaitFor([&] { return etcd.Leader().ok(); }, absl::Seconds(30)));
  uint32_t last = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = a->engine->Rotate("admin", "shop", /*promote_now=*/true);
    ASSERT_THAT(r, IsOk());
    last = r->key_id;
  }
  auto head = a->extra->Get("shop");
  ASSERT_THAT(head, IsOk());
  ASSERT_THAT(a->extra->client().Compact(static_cast<int64_t>(head->version)), IsOk());
  ASSERT_THAT(etcd.Restart(0), IsOk());  // it catches up, compaction included
  ASSERT_TRUE(WaitFor([&] { return Has(*b, "shop", last, v1::PRIMARY); }, absl::Seconds(30)))
      << b->Logs();
  // The reload installs the keyrings first, then counts itself and starts the new watch:
  // wait for the counters rather than read them at the moment the key shows.
  EXPECT_TRUE(WaitFor([&] {
    ReplicaStatus s = b->replica->Status();
    return s.full_loads >= 2 && s.watch_restarts >= 1;
  })) << b->Logs();
  EXPECT_THAT(b->Logs(), HasSubstr("compacted"));
}

// Revocations are stored in etcd (one sealed record per shard) and reach every replica
// through the watch; a replica started later loads them; concurrent revocations on
// several replicas all land (a lost compare-and-swap is retried on the fresh shard).
TEST_F(ReplicaTest, RevocationsReachEveryReplica) {
  std::unique_ptr<Node> a = Start("a");
  std::unique_ptr<Node> b = Start("b");
  ASSERT_THAT(a->engine->CreateKeyring("admin", "shop", {}), IsOk());
  ASSERT_TRUE(WaitFor([&] { return b->engine->Get("shop").ok(); }));
  auto alice = a->engine->Sign("shop", "p", "web", absl::Hours(1), nullptr, "alice");
  auto bob = a->engine->Sign("shop", "p", "web", absl::Hours(1), nullptr, "bob");
  ASSERT_THAT(alice, IsOk());
  ASSERT_THAT(bob, IsOk());
  ASSERT_THAT(b->engine->RevokeSubject("frontend", "shop", "alice"), IsOk());
  EXPECT_EQ(b->engine->RevocationCount("shop"), 1u);
  ASSERT_TRUE(WaitFor([&] { return a->engine->RevocationCount("shop") == 1; })) << a->Logs();
  EXPECT_EQ(a->engine->Verify("shop", alice->token, "web")->status, format::VerifyStatus::kRevoked);
  EXPECT_EQ(a->engine->Verify("shop", bob->token, "web")->status, format::VerifyStatus::kValid);
  // By token, the other way round.
  ASSERT_THAT(a->engine->RevokeToken("frontend", "shop", bob->token, "web"), IsOk());
  ASSERT_TRUE(WaitFor([&] {
    return b->engine->Verify("shop", bob->token, "web")->status == format::VerifyStatus::kRevoked;
  }));
  EXPECT_THAT(a->extra->Get(RevocationRecordName("shop", SubjectShard("alice"))), IsOk());

  // Both replicas revoke at once, many subjects, some sharing a shard.
  constexpr int kEach = 20;
  std::vector<std::thread> writers;
  std::vector<absl::Status> failures(2 * kEach);
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      Engine& e = *(w == 0 ? a : b)->engine;
      for (int i = 0; i < kEach; ++i) {
        failures[w * kEach + i] =
            e.RevokeSubject("frontend", "shop", absl::StrCat("user-", w, "-", i)).status();
      }
    });
  }
  for (auto& t : writers) t.join();
  for (const absl::Status& s : failures) EXPECT_THAT(s, IsOk());
  const size_t total = 2 + 2 * kEach;
  EXPECT_TRUE(WaitFor([&] {
    return a->engine->RevocationCount("shop") == total &&
           b->engine->RevocationCount("shop") == total;
  })) << a->engine->RevocationCount("shop")
      << " " << b->engine->RevocationCount("shop");

  std::unique_ptr<Node> c = Start("c");  // loads the list with the keyrings
  EXPECT_EQ(c->engine->RevocationCount("shop"), total);
}

TEST_F(ReplicaTest, RevokeWithEtcdDownIsUnavailableAndNotReportedDone) {
  auto own = EtcdCluster::Start(1);
  ASSERT_THAT(own, IsOk());
  EtcdCluster& etcd = **own;
  std::unique_ptr<Node> a = Start("a", etcd.endpoints());
  ASSERT_THAT(a->engine->CreateKeyring("admin", "shop", {}), IsOk());
  ASSERT_THAT(a->engine->RevokeSubject("frontend", "shop", "alice"), IsOk());
  etcd.Kill(0);
  EXPECT_THAT(a->engine->RevokeSubject("frontend", "shop", "bob"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(a->engine->RevocationCount("shop"), 1u);
  ASSERT_THAT(etcd.Restart(0), IsOk());
  ASSERT_TRUE(WaitFor([&] { return !a->replica->MayBeBehind(); }, absl::Seconds(30))) << a->Logs();
  EXPECT_EQ(a->engine->RevocationCount("shop"), 1u);  // the refused one never appeared
  EXPECT_THAT(a->engine->RevokeSubject("frontend", "shop", "bob"), IsOk());
}

}  // namespace
}  // namespace sessiontoken::engine
