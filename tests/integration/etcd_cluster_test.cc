// The etcd store against real etcd processes that die, hang and come back: endpoint
// failover in a 3-member cluster (a member killed, the leader killed, a member hung), a
// watch that resumes on another member without losing or repeating a change, a stopped
// etcd reported as UNAVAILABLE within the deadline and used again when it returns, and a
// presence lease that stops counting as live while etcd is frozen past the TTL.
#include "tests/testing/etcd_cluster.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/etcd_store.h"
#include "tests/testing/recording_listener.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::store {
namespace {

using ::sessiontoken::testing::EtcdCluster;
using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::RecordingListener;
using ::sessiontoken::testing::StatusIs;

constexpr absl::Duration kBound = absl::Seconds(15);  // generous bound on any recovery

std::unique_ptr<EtcdStore> Open(std::vector<std::string> endpoints,
                                absl::Duration request_timeout = absl::Seconds(5),
                                absl::Duration attempt_timeout = absl::Milliseconds(1500)) {
  EtcdOptions o;
  o.endpoints = std::move(endpoints);
  o.request_timeout = request_timeout;
  o.attempt_timeout = attempt_timeout;
  o.watch_progress_interval = absl::Milliseconds(300);
  auto s = EtcdStore::New(std::move(o));
  return s.ok() ? *std::move(s) : nullptr;
}

// Retries a CAS write until it succeeds or `kBound` passes; returns the time it took.
absl::StatusOr<absl::Duration> WriteUntilAccepted(EtcdStore& s, const std::string& value,
                                                  uint64_t* version) {
  const absl::Time start = absl::Now();
  absl::Status last;
  while (absl::Now() - start < kBound) {
    auto v = s.Put("shop", value, *version);
    if (v.ok()) {
      *version = *v;
      return absl::Now() - start;
    }
    if (absl::IsAborted(v.status())) return v.status();  // would mean a lost update
    last = v.status();
  }
  return last;
}

TEST(EtcdClusterTest, FailoverWhenAMemberIsKilled) {
  auto cluster = EtcdCluster::Start(3);
  ASSERT_THAT(cluster, IsOk());
  auto store = Open((*cluster)->endpoints());
  uint64_t version = 0;
  ASSERT_THAT(WriteUntilAccepted(*store, "before", &version), IsOk());
  (*cluster)->Kill(0);  // the endpoint the client was using
  auto took = WriteUntilAccepted(*store, "after", &version);
  ASSERT_THAT(took, IsOk());
  std::printf("write after killing the used member: accepted after %s\n",
              absl::FormatDuration(*took).c_str());
  auto got = Open({(*cluster)->endpoint(2)})->Get("shop");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->data, "after");
  EXPECT_EQ(got->version, version);
}

TEST(EtcdClusterTest, FailoverWhenTheLeaderIsKilled) {
  auto cluster = EtcdCluster::Start(3);
  ASSERT_THAT(cluster, IsOk());
  auto leader = (*cluster)->Leader();
  ASSERT_THAT(leader, IsOk());
  std::vector<std::string> endpoints = {(*cluster)->endpoint(*leader)};  // leader first
  for (int i = 0; i < 3; ++i) {
    if (i != *leader) endpoints.push_back((*cluster)->endpoint(i));
  }
  auto store = Open(endpoints);
  uint64_t version = 0;
  ASSERT_THAT(WriteUntilAccepted(*store, "v0", &version), IsOk());
  (*cluster)->Kill(*leader);
  auto took = WriteUntilAccepted(*store, "v1", &version);
  ASSERT_THAT(took, IsOk());
  std::printf("write after killing the leader: accepted after %s\n",
              absl::FormatDuration(*took).c_str());
  for (int i = 2; i <= 5; ++i) {
    ASSERT_THAT(WriteUntilAccepted(*store, absl::StrCat("v", i), &version), IsOk());
  }
  auto got = Open({endpoints[1]})->Get("shop");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->data, "v5");
  EXPECT_EQ(got->version, version);
}

// Every acknowledged change arrives exactly once and in order while the watched member
// dies mid-stream.
TEST(EtcdClusterTest, WatchResumesOnAnotherMemberWithoutLossOrRepeat) {
  auto cluster = EtcdCluster::Start(3);
  ASSERT_THAT(cluster, IsOk());
  auto watcher = Open((*cluster)->endpoints());  // watches member 0
  auto writer = Open({(*cluster)->endpoint(1), (*cluster)->endpoint(2)});
  auto snap = watcher->LoadAll();
  ASSERT_THAT(snap, IsOk());
  RecordingListener listener;
  auto watch = watcher->Watch(snap->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  ASSERT_TRUE(listener.WaitForConnectionChanges(1));  // the stream is up
  std::vector<uint64_t> written;
  uint64_t version = 0;
  for (int i = 0; i < 10; ++i) {
    if (i == 5) (*cluster)->Kill(0);
    ASSERT_THAT(WriteUntilAccepted(*writer, absl::StrCat("v", i), &version), IsOk());
    written.push_back(version);
  }
  ASSERT_TRUE(listener.WaitForEvents(10));
  absl::SleepFor(absl::Milliseconds(500));  // a repeat would arrive now
  auto events = listener.events();
  ASSERT_EQ(events.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(events[i].blob.data, absl::StrCat("v", i));
    EXPECT_EQ(events[i].blob.version, written[i]);
  }
  auto conn = listener.connection();
  ASSERT_GE(conn.size(), 3u);  // connected, lost, then back
  EXPECT_THAT(conn[0], IsOk());
  EXPECT_THAT(conn[1], StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(conn.back(), IsOk());
}

// A hung member (SIGSTOP: sockets open, no answers) costs one attempt timeout per call and
// the watch moves away from it once it stays silent.
TEST(EtcdClusterTest, HungMemberIsSkipped) {
  auto cluster = EtcdCluster::Start(3);
  ASSERT_THAT(cluster, IsOk());
  auto store = Open((*cluster)->endpoints(), absl::Seconds(5), absl::Milliseconds(700));
  uint64_t version = 0;
  ASSERT_THAT(WriteUntilAccepted(*store, "v0", &version), IsOk());
  auto snap = store->LoadAll();
  RecordingListener listener;
  auto watch = store->Watch(snap->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  ASSERT_GT(listener.WaitForProgress(), 0);
  (*cluster)->Pause(0);
  auto took = WriteUntilAccepted(*store, "v1", &version);
  ASSERT_THAT(took, IsOk());
  std::printf("write with the used member hung: accepted after %s\n",
              absl::FormatDuration(*took).c_str());
  const absl::Time before = absl::Now();
  ASSERT_TRUE(listener.WaitForEvents(1));
  std::printf("watch event with the watched member hung: after %s\n",
              absl::FormatDuration(absl::Now() - before).c_str());
  EXPECT_EQ(listener.events()[0].blob.version, version);
  (*cluster)->Resume(0);
}

// A member that lost its leader (the two others frozen) must not keep serving a watch that
// sees nothing: etcd cancels it (require-leader), the watch says so, and resumes with every
// change once the cluster is whole again.
TEST(EtcdClusterTest, WatchOnAMemberWithoutLeaderIsReportedAndResumes) {
  auto cluster = EtcdCluster::Start(3);
  ASSERT_THAT(cluster, IsOk());
  auto store = Open((*cluster)->endpoints());  // watches member 0
  auto snap = store->LoadAll();
  ASSERT_THAT(snap, IsOk());
  RecordingListener listener;
  auto watch = store->Watch(snap->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  ASSERT_GT(listener.WaitForProgress(), 0);
  (*cluster)->Pause(1);
  (*cluster)->Pause(2);
  const absl::Time start = absl::Now();
  while (listener.connection().size() < 2 && absl::Now() - start < kBound) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const std::vector<absl::Status> conn = listener.connection();
  ASSERT_EQ(conn.size(), 2u);  // connected, then lost
  EXPECT_THAT(conn[0], IsOk());
  EXPECT_THAT(conn[1], StatusIs(absl::StatusCode::kUnavailable));
  std::printf("watch on a member without leader reported after %s: %s\n",
              absl::FormatDuration(absl::Now() - start).c_str(),
              std::string(conn[1].message()).c_str());
  (*cluster)->Resume(1);
  (*cluster)->Resume(2);
  uint64_t version = 0;
  ASSERT_THAT(WriteUntilAccepted(*store, "after", &version), IsOk());
  ASSERT_TRUE(listener.WaitForEvents(1));
  EXPECT_EQ(listener.events()[0].blob.version, version);
}

TEST(EtcdClusterTest, StoppedEtcdIsUnavailableWithinTheDeadlineAndRecovers) {
  auto cluster = EtcdCluster::Start(1);
  ASSERT_THAT(cluster, IsOk());
  const absl::Duration deadline = absl::Seconds(1);
  auto store = Open((*cluster)->endpoints(), deadline, absl::Milliseconds(500));
  uint64_t version = 0;
  ASSERT_THAT(WriteUntilAccepted(*store, "kept", &version), IsOk());
  auto snap = store->LoadAll();
  RecordingListener listener;
  auto watch = store->Watch(snap->revision + 1, &listener);
  ASSERT_THAT(watch, IsOk());
  ASSERT_TRUE(listener.WaitForConnectionChanges(1));  // the stream is up

  (*cluster)->Kill(0);
  const absl::Time start = absl::Now();
  EXPECT_THAT(store->Get("shop"),
              StatusIs(absl::StatusCode::kUnavailable, (*cluster)->endpoint(0)));
  const absl::Duration took = absl::Now() - start;
  std::printf("Get with etcd stopped: UNAVAILABLE after %s (deadline %s)\n",
              absl::FormatDuration(took).c_str(), absl::FormatDuration(deadline).c_str());
  EXPECT_LT(took, deadline + absl::Seconds(2));  // bounded by the deadline, not hanging
  EXPECT_THAT(store->Put("shop", "lost?", version), StatusIs(absl::StatusCode::kUnavailable));

  ASSERT_THAT((*cluster)->Restart(0), IsOk());
  auto back = WriteUntilAccepted(*store, "after restart", &version);
  ASSERT_THAT(back, IsOk());  // the earlier failed Put did not land: the CAS still matches
  ASSERT_TRUE(listener.WaitForEvents(1));
  EXPECT_EQ(listener.events()[0].blob.data, "after restart");
  const std::vector<absl::Status> conn = listener.connection();
  ASSERT_GE(conn.size(), 3u);  // connected, lost, then back
  EXPECT_THAT(conn[0], IsOk());
  EXPECT_THAT(conn[1], StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(conn.back(), IsOk());
}

TEST(EtcdClusterTest, FrozenEtcdPastTheTtlMakesThePresenceLeaseNotLive) {
  auto cluster = EtcdCluster::Start(1);
  ASSERT_THAT(cluster, IsOk());
  auto store = Open((*cluster)->endpoints(), absl::Seconds(1), absl::Milliseconds(500));
  auto presence = store->JoinPresence("replica-1", absl::Seconds(2), 1);
  ASSERT_THAT(presence, IsOk());
  EXPECT_TRUE((*presence)->IsLive());
  const absl::Duration ttl = absl::Seconds(2);
  const absl::Time paused_at = absl::Now();  // every answered keepalive was sent before
  (*cluster)->Pause(0);
  absl::Time checked = paused_at;
  while (absl::Now() - paused_at < kBound) {
    checked = absl::Now();
    if (!(*presence)->IsLive()) break;
    // Live only while a keepalive answered before the freeze still covers it.
    ASSERT_LT(checked, paused_at + ttl) << "still live past the TTL without a keepalive";
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE((*presence)->IsLive());
  EXPECT_THAT((*presence)->Liveness(),
              StatusIs(absl::StatusCode::kUnavailable, "no successful etcd keepalive"));
  std::printf("presence liveness lost %s after freezing etcd (TTL 2s)\n",
              absl::FormatDuration(checked - paused_at).c_str());
  (*cluster)->Resume(0);
  // After the thaw the lease is either still there (keepalives prove it again) or expired
  // (etcd says so; the replica must reload and join anew). Never live without proof.
  const absl::Time thaw = absl::Now();
  absl::Status s = (*presence)->Liveness();
  while (absl::IsUnavailable(s) && absl::Now() - thaw < kBound) {
    absl::SleepFor(absl::Milliseconds(50));
    s = (*presence)->Liveness();
  }
  EXPECT_TRUE(s.ok() || absl::IsNotFound(s)) << s;
  std::printf("after thaw: %s\n", s.ok() ? "live again" : std::string(s.message()).c_str());
}

}  // namespace
}  // namespace sessiontoken::store
