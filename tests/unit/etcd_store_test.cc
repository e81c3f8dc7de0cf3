// EtcdStore beyond the Store contract, against a real single-member etcd on 127.0.0.1:
// messages, foreign/corrupt values, consistent load, watch, compaction, presence leases and
// the promotion transaction.
#include "server/store/etcd_store.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/store/etcd_presence.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/recording_listener.h"
#include "tests/testing/slow_proxy.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::store {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::IsOkAndHolds;
using ::sessiontoken::testing::RecordingListener;
using ::sessiontoken::testing::SlowProxy;
using ::sessiontoken::testing::StatusIs;
using ::testing::ElementsAre;

constexpr absl::Duration kWait = absl::Seconds(10);  // bound on waiting for a change

class EtcdStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = EtcdCluster::Start(1);
    ASSERT_THAT(c, IsOk());
    etcd_ = std::move(*c).release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    prefix_ = absl::StrCat("/t", crypto::RandomUint32(), "/");
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  std::unique_ptr<EtcdStore> Open() {
    EtcdOptions o;
    o.endpoints = etcd_->endpoints();
    o.prefix = prefix_;
    auto s = EtcdStore::New(std::move(o));
    return s.ok() ? *std::move(s) : nullptr;
  }
  // Writes a raw value under the prefix, as a foreign tool (etcdctl) would.
  void RawPut(const std::string& key, const std::string& value) {
    etcdserverpb::TxnRequest txn;
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(prefix_ + key);
    put->set_value(value);
    ASSERT_THAT(store_->client().Txn(txn), IsOk());
  }
  void RawDelete(const std::string& key) {
    etcdserverpb::TxnRequest txn;
    txn.add_success()->mutable_request_delete_range()->set_key(prefix_ + key);
    ASSERT_THAT(store_->client().Txn(txn), IsOk());
  }

  static EtcdCluster* etcd_;
  std::string prefix_;
  std::unique_ptr<EtcdStore> store_;
};
EtcdCluster* EtcdStoreTest::etcd_ = nullptr;

TEST_F(EtcdStoreTest, OptionsAreChecked) {
  EtcdOptions none;
  EXPECT_THAT(EtcdStore::New(std::move(none)),
              StatusIs(absl::StatusCode::kInvalidArgument, "etcd_endpoints"));
  EtcdOptions prefix;
  prefix.endpoints = {"127.0.0.1:1"};
  prefix.prefix = "sessiontoken";
  EXPECT_THAT(EtcdStore::New(std::move(prefix)),
              StatusIs(absl::StatusCode::kInvalidArgument, "etcd_prefix"));
  EtcdOptions url;
  url.endpoints = {"http://127.0.0.1:2379"};
  EXPECT_THAT(EtcdStore::New(std::move(url)),
              StatusIs(absl::StatusCode::kInvalidArgument, "host:port"));
  EtcdOptions cert;
  cert.endpoints = {"127.0.0.1:1"};
  cert.cert_file = "/x.pem";
  EXPECT_THAT(EtcdStore::New(std::move(cert)), StatusIs(absl::StatusCode::kInvalidArgument));
  EtcdOptions ca;
  ca.endpoints = {"127.0.0.1:1"};
  ca.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(EtcdStore::New(std::move(ca)),
              StatusIs(absl::StatusCode::kInvalidArgument, "/nonexistent/ca.pem"));
}

TEST_F(EtcdStoreTest, LostCompareNamesBothRevisions) {
  auto v1 = store_->Put("shop", "one", 0);
  ASSERT_THAT(v1, IsOk());
  auto v2 = Open()->Put("shop", "two", *v1);
  ASSERT_THAT(v2, IsOk());
  EXPECT_THAT(store_->Put("shop", "three", *v1),
              StatusIs(absl::StatusCode::kAborted,
                       absl::StrCat("keyring shop changed concurrently (expected "
                                    "revision ",
                                    *v1, ", found ", *v2, ")")));
  EXPECT_THAT(store_->Put("new", "x", 5),
              StatusIs(absl::StatusCode::kAborted, "expected revision 5, found 0"));
}

// A member slow to answer a new connection (busy, or just restarted on a loaded host) is
// still reached. The client once gave a connection attempt 100 ms (1 s at most after its
// backoff grew): a replica then stayed cut off from a restarted etcd for good.
TEST_F(EtcdStoreTest, MemberSlowToAnswerNewConnectionsIsStillReached) {
  const std::string member = etcd_->endpoint(0);
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(member.substr(member.rfind(':') + 1), &port));
  // Longer than the longest reconnect backoff (1 s), well within a connection attempt (5 s).
  auto proxy = SlowProxy::Start(port, absl::Milliseconds(1500));
  ASSERT_THAT(proxy, IsOk());
  EtcdOptions o;
  o.endpoints = {(*proxy)->address()};
  o.prefix = prefix_;
  o.attempt_timeout = absl::Seconds(4);
  o.request_timeout = absl::Seconds(8);
  auto slow = EtcdStore::New(std::move(o));
  ASSERT_THAT(slow, IsOk());
  auto v = (*slow)->Put("shop", "over a slow connection", 0);
  ASSERT_THAT(v, IsOk());
  EXPECT_THAT(store_->Get("shop"), IsOk());
  EXPECT_EQ(store_->Get("shop")->data, "over a slow connection");
  EXPECT_GE((*proxy)->accepted(), 1);
}

TEST_F(EtcdStoreTest, NamesAndSizesAreChecked) {
  EXPECT_THAT(store_->Put("../x", "v", 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Put("Shop", "v", 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Get("a/b"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Put("big", std::string(EtcdStore::kMaxValueBytes + 1, 'x'), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, "limit"));
  EXPECT_THAT(store_->Get("big"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(EtcdStoreTest, PrefixesAreIsolated) {
  ASSERT_THAT(store_->Put("shop", "mine", 0), IsOk());
  const std::string mine = prefix_;
  prefix_ = absl::StrCat("/t", crypto::RandomUint32(), "/");
  auto other = Open();
  EXPECT_THAT(other->Get("shop"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(other->Put("shop", "theirs", 0), IsOk());
  EXPECT_EQ(store_->Get("shop")->data, "mine");
  EXPECT_EQ(other->Get("shop")->data, "theirs");
  prefix_ = mine;
}

// A value under the prefix that is not ours is reported, never used, never overwritten
// blindly, and does not hide the good keyrings.
TEST_F(EtcdStoreTest, ForeignAndCorruptValuesAreReportedNotUsed) {
  ASSERT_THAT(store_->Put("good", "sealed", 0), IsOk());
  RawPut("keyrings/shop", "hello from etcdctl");
  RawPut("keyrings/Not A Name", "STE1\nlooks like ours");
  EXPECT_THAT(store_->Get("shop"), StatusIs(absl::StatusCode::kDataLoss, "keyrings/shop"));
  EXPECT_THAT(store_->Put("shop", "new", 0), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(store_->List(), IsOkAndHolds(ElementsAre("good", "shop")));
  auto snap = store_->LoadAll();
  ASSERT_THAT(snap, IsOk());
  ASSERT_EQ(snap->keyrings.size(), 2u);
  EXPECT_EQ(snap->keyrings[0].name, "good");
  EXPECT_THAT(snap->keyrings[0].status, IsOk());
  EXPECT_EQ(snap->keyrings[0].blob.data, "sealed");
  EXPECT_EQ(snap->keyrings[1].name, "shop");
  EXPECT_THAT(snap->keyrings[1].status, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(snap->keyrings[1].blob.data.empty());
  EXPECT_THAT(snap->foreign_keys, ElementsAre(prefix_ + "keyrings/Not A Name"));

  RecordingListener listener;
  auto watch = store_->Watch(snap->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  RawPut("keyrings/good", "garbage over a good keyring");
  RawPut("keyrings/a/b", "foreign");
  ASSERT_TRUE(listener.WaitForEvents(2));
  auto events = listener.events();
  EXPECT_EQ(events[0].name, "good");
  EXPECT_THAT(events[0].status, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(events[0].blob.data.empty());
  EXPECT_EQ(events[1].name, prefix_ + "keyrings/a/b");
  EXPECT_THAT(events[1].status, StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(EtcdStoreTest, LoadAllIsOneRevisionAndTheWatchContinuesFromIt) {
  auto a = store_->Put("a", "a1", 0);
  auto b = store_->Put("b", "b1", 0);
  ASSERT_THAT(b, IsOk());
  auto snap = store_->LoadAll();
  ASSERT_THAT(snap, IsOk());
  EXPECT_GE(snap->revision, static_cast<int64_t>(*b));
  ASSERT_EQ(snap->keyrings.size(), 2u);
  EXPECT_EQ(snap->keyrings[0].blob.version, *a);
  EXPECT_EQ(snap->keyrings[1].blob.version, *b);
  RecordingListener listener;
  auto watch = store_->Watch(snap->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  auto a2 = Open()->Put("a", "a2", *a);
  ASSERT_THAT(a2, IsOk());
  RawDelete("keyrings/b");
  ASSERT_TRUE(listener.WaitForEvents(2));
  auto events = listener.events();
  ASSERT_EQ(events.size(), 2u);  // nothing from before the snapshot
  EXPECT_EQ(events[0].name, "a");
  EXPECT_FALSE(events[0].deleted);
  EXPECT_EQ(events[0].blob.data, "a2");
  EXPECT_EQ(events[0].blob.version, *a2);
  EXPECT_EQ(events[1].name, "b");
  EXPECT_TRUE(events[1].deleted);
}

TEST_F(EtcdStoreTest, WatchDeliversAnotherClientsWriteQuickly) {
  auto snap = store_->LoadAll();
  ASSERT_THAT(snap, IsOk());
  RecordingListener listener;
  auto watch = store_->Watch(snap->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  EXPECT_GT(listener.WaitForProgress(), 0);  // the stream is up and answers progress requests
  auto writer = Open();
  std::vector<absl::Duration> latencies;
  uint64_t version = 0;
  for (int i = 0; i < 5; ++i) {
    const absl::Time before = absl::Now();
    auto v = writer->Put("shop", absl::StrCat("v", i), version);
    ASSERT_THAT(v, IsOk());
    version = *v;
    ASSERT_TRUE(listener.WaitForEvents(i + 1));
    latencies.push_back(listener.seen_at(i) - before);
    EXPECT_EQ(listener.events()[i].blob.version, version);
  }
  std::sort(latencies.begin(), latencies.end());
  std::printf("watch latency (put start -> event delivered): min %s median %s max %s\n",
              absl::FormatDuration(latencies.front()).c_str(),
              absl::FormatDuration(latencies[2]).c_str(),
              absl::FormatDuration(latencies.back()).c_str());
}

TEST_F(EtcdStoreTest, CompactedHistorySignalsResync) {
  auto v = store_->Put("shop", "v1", 0);
  ASSERT_THAT(v, IsOk());
  auto snap_old = store_->LoadAll();
  for (int i = 0; i < 3; ++i) {
    v = store_->Put("shop", absl::StrCat("v", i + 2), *v);
    ASSERT_THAT(v, IsOk());
  }
  ASSERT_THAT(store_->client().Compact(static_cast<int64_t>(*v)), IsOk());
  RecordingListener listener;
  auto watch = store_->Watch(snap_old->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  EXPECT_EQ(listener.WaitForResync(), static_cast<int64_t>(*v));
  EXPECT_TRUE(listener.events().empty());
  // The documented recovery: reload, watch from the reload's revision + 1.
  auto snap = store_->LoadAll();
  ASSERT_THAT(snap, IsOk());
  EXPECT_EQ(snap->keyrings[0].blob.data, "v4");
  RecordingListener after;
  auto watch2 = store_->Watch(snap->revision + 1, &after);
  ASSERT_THAT(watch2, IsOk());
  ASSERT_THAT(store_->Put("shop", "v5", *v), IsOk());
  ASSERT_TRUE(after.WaitForEvents(1));
  EXPECT_EQ(after.events()[0].blob.data, "v5");
}

TEST_F(EtcdStoreTest, PresenceJoinListAnnounceLeave) {
  auto r1 = store_->JoinPresence("replica-1", absl::Seconds(5), 10);
  ASSERT_THAT(r1, IsOk());
  EXPECT_TRUE((*r1)->IsLive());
  EXPECT_THAT((*r1)->Liveness(), IsOk());
  auto r2 = Open()->JoinPresence("replica-2", absl::Seconds(5), 11);
  ASSERT_THAT(r2, IsOk());
  EXPECT_THAT(store_->JoinPresence("replica-1", absl::Seconds(5), 12),
              StatusIs(absl::StatusCode::kAlreadyExists, "replica-1"));
  EXPECT_THAT(store_->JoinPresence("bad id/", absl::Seconds(5), 12),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto set = store_->ListPresence();
  ASSERT_THAT(set, IsOk());
  ASSERT_EQ(set->replicas.size(), 2u);
  EXPECT_EQ(set->replicas[0].replica_id, "replica-1");
  EXPECT_EQ(set->replicas[0].loaded_revision, 10);
  EXPECT_EQ(set->replicas[1].loaded_revision, 11);
  ASSERT_THAT((*r1)->Announce(42), IsOk());
  set = store_->ListPresence();
  EXPECT_EQ(set->replicas[0].loaded_revision, 42);
  r2->reset();  // leaves: lease revoked, key gone
  set = store_->ListPresence();
  ASSERT_EQ(set->replicas.size(), 1u);
  EXPECT_EQ(set->replicas[0].replica_id, "replica-1");
}

TEST_F(EtcdStoreTest, RevokedLeaseIsReportedGone) {
  auto r1 = store_->JoinPresence("replica-1", absl::Seconds(3), 1);
  ASSERT_THAT(r1, IsOk());
  auto* p = static_cast<EtcdPresence*>(r1->get());
  ASSERT_THAT(Open()->client().LeaseRevoke(p->lease_id()), IsOk());
  const absl::Time deadline = absl::Now() + kWait;
  while (p->IsLive() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(p->IsLive());
  EXPECT_THAT(p->Liveness(), StatusIs(absl::StatusCode::kNotFound, "join again"));
  EXPECT_THAT(p->Announce(2), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(store_->ListPresence()->replicas.empty());
}

class PromotionTest : public EtcdStoreTest {
 protected:
  void SetUp() override {
    EtcdStoreTest::SetUp();
    auto v = store_->Put("shop", "staged", 0);
    ASSERT_THAT(v, IsOk());
    version_ = *v;
    for (const char* id : {"r1", "r2"}) {
      auto r = store_->JoinPresence(id, absl::Seconds(5), static_cast<int64_t>(version_));
      ASSERT_THAT(r, IsOk());
      replicas_.push_back(*std::move(r));
    }
    auto set = store_->ListPresence();
    ASSERT_THAT(set, IsOk());
    set_ = *set;
  }
  absl::StatusOr<uint64_t> Promote() {
    return store_->PutIfPresenceUnchanged("shop", "promoted", version_, set_);
  }
  void ExpectNotPromoted() { EXPECT_EQ(store_->Get("shop")->data, "staged"); }

  uint64_t version_ = 0;
  std::vector<std::unique_ptr<PresenceLease>> replicas_;
  PresenceSet set_;
};

TEST_F(PromotionTest, SucceedsWhenNothingChanged) {
  auto v = Promote();
  ASSERT_THAT(v, IsOk());
  EXPECT_GT(*v, version_);
  EXPECT_EQ(store_->Get("shop")->data, "promoted");
  EXPECT_EQ(store_->Get("shop")->version, *v);
}

TEST_F(PromotionTest, FailsWhenTheKeyringChanged) {
  ASSERT_THAT(store_->Put("shop", "other", version_), IsOk());
  EXPECT_THAT(Promote(), StatusIs(absl::StatusCode::kAborted, "changed concurrently"));
}

TEST_F(PromotionTest, FailsWhenAReplicaReannounced) {
  ASSERT_THAT(replicas_[1]->Announce(static_cast<int64_t>(version_) + 1), IsOk());
  EXPECT_THAT(Promote(), StatusIs(absl::StatusCode::kAborted, "re-announced: [r2]"));
  ExpectNotPromoted();
}

TEST_F(PromotionTest, FailsWhenAReplicaJoined) {
  auto r3 = Open()->JoinPresence("r3", absl::Seconds(5), 0);
  ASSERT_THAT(r3, IsOk());
  EXPECT_THAT(Promote(), StatusIs(absl::StatusCode::kAborted, "joined: [r3]"));
  ExpectNotPromoted();
}

TEST_F(PromotionTest, FailsWhenAReplicaLeftOrRejoined) {
  replicas_[0].reset();
  EXPECT_THAT(Promote(), StatusIs(absl::StatusCode::kAborted, "left: [r1]"));
  auto again = store_->JoinPresence("r1", absl::Seconds(5), static_cast<int64_t>(version_));
  ASSERT_THAT(again, IsOk());
  // Same id, same loaded revision, but a new key on a new lease: still a change.
  EXPECT_THAT(Promote(), StatusIs(absl::StatusCode::kAborted, "r1"));
  ExpectNotPromoted();
}

TEST_F(PromotionTest, EmptyPresenceSetBlocksLaterJoins) {
  replicas_.clear();
  auto empty = store_->ListPresence();
  ASSERT_THAT(empty, IsOk());
  ASSERT_TRUE(empty->replicas.empty());
  auto r9 = Open()->JoinPresence("r9", absl::Seconds(5), 0);
  ASSERT_THAT(r9, IsOk());
  EXPECT_THAT(store_->PutIfPresenceUnchanged("shop", "promoted", version_, *empty),
              StatusIs(absl::StatusCode::kAborted, "joined: [r9]"));
  r9->reset();
  auto none = store_->ListPresence();
  EXPECT_THAT(store_->PutIfPresenceUnchanged("shop", "promoted", version_, *none), IsOk());
}

}  // namespace
}  // namespace sessiontoken::store
