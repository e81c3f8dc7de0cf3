// Revocation: the list (revocations.h) and the engine's Revoke paths over the memory and
// file stores: what is revoked and what stays valid, the cap, pruning, persistence, and
// failure paths (store down, a crash mid-write, a damaged record).
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/engine/revocations.h"
#include "server/store/file_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken::engine {
namespace {

using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;

constexpr int64_t kT = 1800000000;

std::shared_ptr<const RevocationList> ListWith(absl::string_view token_id,
                                               absl::string_view subject, int64_t cutoff) {
  std::shared_ptr<const RevocationList> list = RevocationList::Empty();
  auto t = list->shard(TokenShard(token_id)).Pruned(0);
  t->AddToken(token_id, cutoff + 3600);
  list = list->With(TokenShard(token_id), t);
  auto s = list->shard(SubjectShard(subject)).Pruned(0);
  s->AddSubject(subject, cutoff, cutoff + 3600);
  return list->With(SubjectShard(subject), s);
}

TEST(RevocationListTest, RevokedTokenAndSubjectOthersValid) {
  auto list = ListWith("id-1", "alice", kT);
  EXPECT_EQ(list->size(), 2u);
  EXPECT_TRUE(list->IsRevoked("id-1", "", kT + 10));        // the revoked token
  EXPECT_TRUE(list->IsRevoked("id-9", "alice", kT));        // issued at the cutoff
  EXPECT_TRUE(list->IsRevoked("id-9", "alice", kT - 100));  // issued before it
  EXPECT_FALSE(list->IsRevoked("id-9", "alice", kT + 1));   // issued after: valid
  EXPECT_FALSE(list->IsRevoked("id-9", "bob", kT - 100));   // another subject
  EXPECT_FALSE(list->IsRevoked("", "", kT));                // v1 / Flask tokens
  EXPECT_FALSE(RevocationList::Empty()->IsRevoked("id-1", "alice", kT));
}

TEST(RevocationListTest, PruningDropsEntriesPastTheirDropTime) {
  auto list = ListWith("id-1", "alice", kT);
  const int ts = TokenShard("id-1");
  EXPECT_EQ(list->shard(ts).earliest_drop(), kT + 3600);
  auto pruned = list->shard(ts).Pruned(kT + 3600);
  EXPECT_EQ(pruned->size(), 0u);
  list = list->With(ts, pruned);
  EXPECT_FALSE(list->IsRevoked("id-1", "", kT));
  EXPECT_EQ(list->size(), TokenShard("id-1") == SubjectShard("alice") ? 0u : 1u);
}

TEST(RevocationListTest, RecordNamesAndShardsAreStable) {
  EXPECT_EQ(RevocationRecordName("shop", 7), "_rev.shop.007");
  auto parsed = ParseRevocationRecordName("_rev.shop-2.127");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->keyring, "shop-2");
  EXPECT_EQ(parsed->shard, 127);
  EXPECT_FALSE(ParseRevocationRecordName("_rev.shop.128").has_value());
  EXPECT_FALSE(ParseRevocationRecordName("_mark.shop").has_value());
  EXPECT_FALSE(ParseRevocationRecordName("shop").has_value());
  // A fixed function: the same on every replica and build (a change would split the list).
  EXPECT_EQ(TokenShard("h8wcjlemaCpx5ACnEYtRHw"),
            TokenShard(std::string("h8wcjlemaCpx5ACnEYtRHw")));
  EXPECT_EQ(TokenShard("h8wcjlemaCpx5ACnEYtRHw"), 88);
  EXPECT_EQ(SubjectShard("alice"), 59);
  EXPECT_NE(TokenShard("alice"), SubjectShard("alice"));  // separate namespaces (here)
}

// The hash that picks a shard, pinned for every tail length class (empty, 1-7 bytes, a whole
// word, words + tail, non-ASCII bytes): a faster implementation must give the same values,
// or replicas of different builds would read different records for one entry.
TEST(RevocationListTest, RevocationHashIsPinned) {
  struct Case {
    char kind;
    const char* key;
    uint64_t hash;
  };
  const Case cases[] = {
      {'t', "", 0x268435438290c362ull},
      {'s', "", 0x15c49fc27e959761ull},
      {'t', "a", 0x9efb5185d3eba4b8ull},
      {'s', "a", 0x532208dadb216e73ull},
      {'t', "alice", 0xaed84a7f3da435e0ull},
      {'s', "alice", 0x149a34618db7c53bull},
      {'t', "user-42", 0xf588b99c953becebull},
      {'s', "user-42", 0xe5173d3737c7c9b2ull},
      {'t', "12345678", 0x4e2981eacc8085cbull},
      {'s', "12345678", 0xe3978b47d873e8ecull},
      {'t', "h8wcjlemaCpx5ACnEYtRHw", 0x226c8b9e8079d9d8ull},
      {'s', "h8wcjlemaCpx5ACnEYtRHw", 0x02bc5c34b888c9e1ull},
      {'t', "\xff\x80 subject\xc3\xa9!", 0x4f2a29906b30bf41ull},
      {'s', "\xff\x80 subject\xc3\xa9!", 0x9246b1a4e580f319ull},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RevocationHash(c.kind, c.key), c.hash) << c.kind << " " << c.key;
  }
}

// A store whose writes can be made to fail (etcd or a disk gone).
class FlakyStore final : public store::Store {
 public:
  explicit FlakyStore(store::Store* inner) : inner_(inner) {}
  absl::StatusOr<std::vector<std::string>> List() override { return inner_->List(); }
  absl::StatusOr<store::VersionedBlob> Get(absl::string_view n) override { return inner_->Get(n); }
  absl::StatusOr<uint64_t> Put(absl::string_view n, absl::string_view d, uint64_t v) override {
    if (down) return absl::UnavailableError("store unreachable");
    return inner_->Put(n, d, v);
  }
  bool down = false;

 private:
  store::Store* inner_;
};

class EngineRevokeTest : public ::testing::Test {
 protected:
  EngineRevokeTest() : clock_(absl::FromUnixSeconds(kT)), kek_(crypto::RandomSecret(32)) {}
  std::unique_ptr<Engine> NewEngine(std::unique_ptr<store::Store> s, size_t cap = 100) {
    EngineOptions o;
    o.limits.max_revocations = cap;
    o.limits.max_ttl = absl::Hours(24);
    auto e = Engine::New(
        std::move(s), *store::Sealer::New(crypto::SecretBytes::CopyFrom(kek_.view())), &clock_, o);
    EXPECT_THAT(e, IsOk()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }
  keyring::FakeClock clock_;
  crypto::SecretBytes kek_;
};

TEST_F(EngineRevokeTest, SubjectEntryDropsAfterTheLongestTtl) {
  auto e = NewEngine(std::make_unique<store::MemoryStore>());
  auto r = e->RevokeSubject("ops", "default", "alice");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->revoked_at, kT);
  EXPECT_EQ(r->drop_after, kT + 24 * 3600 + 30);  // max_ttl + max_clock_skew
  EXPECT_EQ(e->RevocationCount("default"), 1u);
  EXPECT_THAT(e->RevokeSubject("ops", "nope", "alice"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(e->RevokeSubject("ops", "default", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(e->RevokeSubject("ops", "default", std::string(129, 's')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  clock_.Advance(absl::Hours(24));
  EXPECT_THAT(e->PruneRevocations("default"), IsOk());
  EXPECT_EQ(e->RevocationCount("default"), 1u);  // not yet: skew margin left
  clock_.Advance(absl::Seconds(30));
  auto dropped = e->PruneRevocations("default");
  ASSERT_THAT(dropped, IsOk());
  EXPECT_EQ(*dropped, 1u);
  EXPECT_EQ(e->RevocationCount("default"), 0u);
}

TEST_F(EngineRevokeTest, CapIsEnforcedWithAClearError) {
  auto e = NewEngine(std::make_unique<store::MemoryStore>(), /*cap=*/3);
  for (const char* s : {"a", "b", "c"}) ASSERT_THAT(e->RevokeSubject("ops", "default", s), IsOk());
  auto full = e->RevokeSubject("ops", "default", "d");
  EXPECT_THAT(full, StatusIs(absl::StatusCode::kResourceExhausted, "max_revocations = 3"));
  EXPECT_EQ(e->RevocationCount("default"), 3u);
  EXPECT_THAT(e->RevokeSubject("ops", "default", "a"), IsOk());  // renewing one is no growth
  clock_.Advance(absl::Hours(25));                               // every entry past its drop time
  EXPECT_THAT(e->PruneRevocations("default"), IsOk());
  EXPECT_EQ(e->RevocationCount("default"), 0u);
  EXPECT_THAT(e->RevokeSubject("ops", "default", "d"), IsOk());
}

TEST_F(EngineRevokeTest, StoreDownIsUnavailableAndNothingIsRevoked) {
  store::MemoryStore memory;
  auto flaky = std::make_unique<FlakyStore>(&memory);
  FlakyStore* f = flaky.get();
  auto e = NewEngine(std::move(flaky));
  ASSERT_THAT(e->RevokeSubject("ops", "default", "alice"), IsOk());
  f->down = true;
  EXPECT_THAT(e->RevokeSubject("ops", "default", "bob"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(e->RevocationCount("default"), 1u);
  f->down = false;
  EXPECT_THAT(e->RevokeSubject("ops", "default", "bob"), IsOk());
  EXPECT_EQ(e->RevocationCount("default"), 2u);
}

TEST_F(EngineRevokeTest, FileStoreKeepsEntriesAcrossRestartAndHalfWrittenFiles) {
  const std::string dir = testing::MakeTempDir();
  {
    auto e = NewEngine(*store::FileStore::Open(dir));
    for (const char* s : {"alice", "bob"})
      ASSERT_THAT(e->RevokeSubject("ops", "default", s), IsOk());
  }
  // A crash while writing the shard of a third revocation left its temp file half-written.
  const std::string record = RevocationRecordName("default", SubjectShard("alice"));
  { std::ofstream(dir + "/keyrings/" + record + ".keyring.tmp.4242") << "STR1half"; }
  auto e = NewEngine(*store::FileStore::Open(dir));
  EXPECT_EQ(e->RevocationCount("default"), 2u);
  // And a damaged record refuses the start rather than forget revocations.
  e.reset();
  { std::ofstream(dir + "/keyrings/" + record + ".keyring", std::ios::trunc) << "STR1damaged"; }
  auto damaged =
      Engine::New(*store::FileStore::Open(dir),
                  *store::Sealer::New(crypto::SecretBytes::CopyFrom(kek_.view())), &clock_, {});
  EXPECT_THAT(damaged, StatusIs(absl::StatusCode::kDataLoss));
}

class EngineRevokeTokensTest : public EngineRevokeTest {
 protected:
  void SetUp() override { e_ = NewEngine(std::make_unique<store::MemoryStore>(), 10000); }
  std::string SignFor(absl::string_view subject, absl::Duration ttl = absl::Hours(1)) {
    auto s = e_->Sign("default", "payload", "web", ttl, nullptr, subject);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? s->token : "";
  }
  format::VerifyStatus Check(const std::string& token) {
    auto v = e_->Verify("default", token, "web");
    EXPECT_THAT(v, IsOk());
    if (v.ok() && v->status == format::VerifyStatus::kRevoked) {
      EXPECT_EQ(v->payload, "");
    }
    return v.ok() ? v->status : format::VerifyStatus::kMalformed;
  }
  std::unique_ptr<Engine> e_;
};

TEST_F(EngineRevokeTokensTest, RevokedTokenIsRevokedOtherSessionsStayValid) {
  const std::string mine = SignFor("alice"), other_device = SignFor("alice"), bob = SignFor("bob");
  auto r = e_->RevokeToken("frontend", "default", mine, "web");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->drop_after, kT + 3600);  // the token's expiry
  EXPECT_EQ(Check(mine), format::VerifyStatus::kRevoked);
  EXPECT_EQ(Check(other_device), format::VerifyStatus::kValid);
  EXPECT_EQ(Check(bob), format::VerifyStatus::kValid);
  EXPECT_THAT(e_->RevokeToken("frontend", "default", mine, "web"), IsOk());  // a retry
  EXPECT_EQ(e_->RevocationCount("default"), 1u);
  // Once the token expired it is EXPIRED (its own result) and the entry goes.
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Check(mine), format::VerifyStatus::kExpired);
  ASSERT_THAT(e_->PruneRevocations("default"), IsOk());
  EXPECT_EQ(e_->RevocationCount("default"), 0u);
}

TEST_F(EngineRevokeTokensTest, TokenThatDoesNotVerifyIsRefusedAndNothingStored) {
  const std::string token = SignFor("alice");
  std::string tampered = token;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_THAT(e_->RevokeToken("f", "default", tampered, "web"),
              StatusIs(absl::StatusCode::kInvalidArgument, "does not verify"));
  EXPECT_THAT(e_->RevokeToken("f", "default", token, "other-audience"),
              StatusIs(absl::StatusCode::kInvalidArgument, "WRONG_AUDIENCE"));
  EXPECT_THAT(e_->RevokeToken("f", "default", "junk", "web"),
              StatusIs(absl::StatusCode::kInvalidArgument, "MALFORMED"));
  EXPECT_THAT(e_->RevokeToken("f", "default", "", "web"),
              StatusIs(absl::StatusCode::kInvalidArgument, "token"));
  const std::string short_lived = SignFor("alice", absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(e_->RevokeToken("f", "default", short_lived, "web"),
              StatusIs(absl::StatusCode::kInvalidArgument, "EXPIRED"));
  EXPECT_EQ(e_->RevocationCount("default"), 0u);
  EXPECT_EQ(Check(token), format::VerifyStatus::kValid);
}

TEST_F(EngineRevokeTokensTest, SubjectRevocationEndsEarlierSessionsOnly) {
  const std::string before = SignFor("alice"), bob = SignFor("bob");
  clock_.Advance(absl::Seconds(5));
  const std::string at_cutoff = SignFor("alice");
  ASSERT_THAT(e_->RevokeSubject("frontend", "default", "alice"), IsOk());
  EXPECT_EQ(Check(before), format::VerifyStatus::kRevoked);
  EXPECT_EQ(Check(at_cutoff), format::VerifyStatus::kRevoked);  // same second as the cutoff
  EXPECT_EQ(Check(bob), format::VerifyStatus::kValid);
  clock_.Advance(absl::Seconds(1));
  const std::string after = SignFor("alice");  // the next login
  EXPECT_EQ(Check(after), format::VerifyStatus::kValid);
  EXPECT_EQ(Check(SignFor("")), format::VerifyStatus::kValid);  // no subject
}

TEST_F(EngineRevokeTokensTest, LookupsStayExactWithManyEntries) {
  // Entries in every shard; each lookup is one hash and one map find (the bench measures
  // its cost with 100,000 entries).
  constexpr int kSubjects = 3000;
  for (int i = 0; i < kSubjects; ++i) {
    ASSERT_THAT(e_->RevokeSubject("f", "default", absl::StrCat("user-", i)), IsOk());
  }
  EXPECT_EQ(e_->RevocationCount("default"), static_cast<size_t>(kSubjects));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Check(SignFor("user-17")), format::VerifyStatus::kValid);  // issued after
  EXPECT_EQ(Check(SignFor("someone-else")), format::VerifyStatus::kValid);
  clock_.Advance(-absl::Seconds(2));
  EXPECT_EQ(Check(SignFor("user-2999")), format::VerifyStatus::kRevoked);
  EXPECT_EQ(Check(SignFor("user-0")), format::VerifyStatus::kRevoked);
}

}  // namespace
}  // namespace sessiontoken::engine
