// Issue 14: KEK rotation and backups. The Sealer with several KEKs (open with any, seal with
// the current one, name a missing KEK by fingerprint), the engine's rewrap and KEK reload on a
// real FileStore, and the backup file and restore (integrity, refusals, what comes back).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/engine/restore.h"
#include "server/keyring/lifecycle.h"
#include "server/store/backup_file.h"
#include "server/store/file_store.h"
#include "server/store/sealer.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/test_util.h"

namespace sessiontoken {
namespace {

using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::MakeTempDir;
using ::sessiontoken::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

crypto::SecretBytes Copy(const crypto::SecretBytes& k) {
  return crypto::SecretBytes::CopyFrom(k.view());
}
std::string Hex(const crypto::SecretBytes& k) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

std::unique_ptr<store::Sealer> SealerOf(const crypto::SecretBytes& current,
                                        std::vector<const crypto::SecretBytes*> previous = {}) {
  std::vector<crypto::SecretBytes> prev;
  for (const auto* p : previous) prev.push_back(Copy(*p));
  return *store::Sealer::New(Copy(current), std::move(prev));
}

class KekTest : public ::testing::Test {
 protected:
  crypto::SecretBytes k1_ = crypto::RandomSecret(32);
  crypto::SecretBytes k2_ = crypto::RandomSecret(32);
  keyring::FakeClock clock_{absl::FromUnixSeconds(1700000000)};
};

TEST_F(KekTest, OpensWithAnyKekSealsWithTheCurrentOne) {
  auto old_only = SealerOf(k1_);
  auto both = SealerOf(k2_, {&k1_});
  auto kr = *keyring::Keyring::Create("shop", clock_.Now());
  std::string under_k1 = *old_only->Seal(*kr);
  std::string mark_k1 = *old_only->SealMark("shop", 7);
  ASSERT_THAT(both->Open("shop", under_k1), IsOk());
  EXPECT_EQ((*both->Open("shop", under_k1))->primary().id(), kr->primary().id());
  EXPECT_EQ(*both->OpenMark("shop", mark_k1), 7u);
  EXPECT_FALSE(both->SealedWithCurrent(under_k1));
  EXPECT_EQ(*store::Sealer::FingerprintOf(under_k1), old_only->fingerprint());
  std::string under_k2 = *both->Seal(*kr);
  EXPECT_TRUE(both->SealedWithCurrent(under_k2));
  EXPECT_EQ(*store::Sealer::FingerprintOf(under_k2), both->fingerprint());
  EXPECT_EQ(*store::Sealer::FingerprintOf(*both->SealMark("shop", 8)), both->fingerprint());
  EXPECT_EQ(both->previous_fingerprints(), std::vector<std::string>{old_only->fingerprint()});
  // The old KEK alone opens nothing the new one sealed, and says which KEK it needs.
  auto refused = old_only->Open("shop", under_k2);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition, both->fingerprint()));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr(Hex(k1_))));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr(Hex(k2_))));
  EXPECT_THAT(old_only->CheckKek("keyring shop", under_k2),
              StatusIs(absl::StatusCode::kFailedPrecondition, "previous_kek_files"));
  EXPECT_THAT(both->CheckKek("keyring shop", under_k1), IsOk());
  EXPECT_THAT(old_only->OpenMark("shop", *both->SealMark("shop", 8)),
              StatusIs(absl::StatusCode::kFailedPrecondition, both->fingerprint()));
}

TEST_F(KekTest, RefusesAKekGivenTwice) {
  std::vector<crypto::SecretBytes> prev;
  prev.push_back(Copy(k1_));
  EXPECT_THAT(store::Sealer::New(Copy(k1_), std::move(prev)),
              StatusIs(absl::StatusCode::kInvalidArgument, "given twice"));
  std::vector<crypto::SecretBytes> two;
  two.push_back(Copy(k2_));
  two.push_back(Copy(k2_));
  EXPECT_THAT(store::Sealer::New(Copy(k1_), std::move(two)),
              StatusIs(absl::StatusCode::kInvalidArgument, "given twice"));
}

TEST_F(KekTest, BackupMacChecksWithTheRightKekOnly) {
  auto old_only = SealerOf(k1_);
  auto both = SealerOf(k2_, {&k1_});
  const std::string mac = old_only->BackupMac("content");
  EXPECT_THAT(both->CheckBackupMac(old_only->fingerprint(), "content", mac), IsOk());
  EXPECT_THAT(both->CheckBackupMac(old_only->fingerprint(), "contenT", mac),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(SealerOf(k2_)->CheckBackupMac(old_only->fingerprint(), "content", mac),
              StatusIs(absl::StatusCode::kFailedPrecondition, old_only->fingerprint()));
  EXPECT_NE(mac, both->BackupMac("content"));
}

// An engine over the file store in `dir` with these KEKs.
absl::StatusOr<std::unique_ptr<engine::Engine>> Open(const std::string& dir,
                                                     std::unique_ptr<store::Sealer> sealer,
                                                     const keyring::Clock* clock) {
  auto fs = store::FileStore::Open(dir);
  if (!fs.ok()) return fs.status();
  return engine::Engine::New(*std::move(fs), std::move(sealer), clock, {});
}

// Fingerprints of every record of the file store in `dir`.
std::vector<std::string> Fingerprints(const std::string& dir) {
  auto fs = *store::FileStore::Open(dir);
  std::vector<std::string> out;
  const std::vector<std::string> names = *fs->List();
  for (const std::string& name : names) {
    out.push_back(*store::Sealer::FingerprintOf(fs->Get(name)->data));
  }
  return out;
}

TEST_F(KekTest, RewrapResealsEverythingAndTheOldKekAloneNoLongerStarts) {
  const std::string dir = MakeTempDir();
  std::string token;
  {
    auto e = *Open(dir, SealerOf(k1_), &clock_);
    ASSERT_THAT(e->CreateKeyring("t", "shop", {}), IsOk());
    ASSERT_THAT(e->CreateKeyring("t", "blog", {}), IsOk());
    token = e->Sign("shop", "p", "", absl::Hours(1))->token;
  }
  const std::string fp1 = SealerOf(k1_)->fingerprint(), fp2 = SealerOf(k2_)->fingerprint();
  EXPECT_THAT(Open(dir, SealerOf(k2_), &clock_),
              StatusIs(absl::StatusCode::kFailedPrecondition, fp1));  // new KEK alone: refused
  auto e = *Open(dir, SealerOf(k2_, {&k1_}), &clock_);
  // The next write of a keyring reseals it with the current KEK; the others wait.
  const uint64_t before = (*e->Get("shop"))->revision();
  ASSERT_THAT(e->Rotate("t", "shop", true), IsOk());
  auto r = e->RewrapKeyrings("op");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->kek_fingerprint, fp2);
  EXPECT_EQ(r->keyrings, 3);   // default, shop, blog
  EXPECT_EQ(r->rewrapped, 2);  // shop was resealed by its rotation already
  EXPECT_THAT(r->remaining, IsEmpty());
  EXPECT_EQ((*e->Get("shop"))->revision(), before + 1);  // the rewrap did not touch it
  EXPECT_EQ(e->Verify("shop", token, "")->status, format::VerifyStatus::kValid);
  auto again = e->RewrapKeyrings("op");
  EXPECT_EQ(again->rewrapped, 0);
  e.reset();
  for (const std::string& fp : Fingerprints(dir)) EXPECT_EQ(fp, fp2);
  auto refused = Open(dir, SealerOf(k1_), &clock_);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition, fp2));
  EXPECT_THAT(refused.status().message(), HasSubstr("--kek_file"));
  auto e2 = Open(dir, SealerOf(k2_), &clock_);
  ASSERT_THAT(e2, IsOk());
  EXPECT_EQ((*e2)->Verify("shop", token, "")->status, format::VerifyStatus::kValid);
}

TEST_F(KekTest, ReplaceSealerRefusesAKekSetThatDoesNotOpenTheStore) {
  const std::string dir = MakeTempDir();
  auto e = *Open(dir, SealerOf(k1_), &clock_);
  EXPECT_THAT(e->ReplaceSealer(SealerOf(k2_)),
              StatusIs(absl::StatusCode::kFailedPrecondition, SealerOf(k1_)->fingerprint()));
  EXPECT_EQ(e->kek_fingerprint(), SealerOf(k1_)->fingerprint());  // unchanged
  ASSERT_THAT(e->ReplaceSealer(SealerOf(k2_, {&k1_})), IsOk());
  auto r = e->RewrapKeyrings("op");
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->remaining, IsEmpty());
  ASSERT_THAT(e->ReplaceSealer(SealerOf(k2_)), IsOk());
  EXPECT_THAT(e->Rotate("t", "default", true), IsOk());
}

TEST_F(KekTest, BackupRestoresIntoAnEmptyStoreAndRefusesDamage) {
  const std::string dir = MakeTempDir();
  auto e = *Open(dir, SealerOf(k1_), &clock_);
  ASSERT_THAT(e->CreateKeyring("t", "shop", {}), IsOk());
  const std::string token = e->Sign("shop", "p", "", absl::Hours(1))->token;
  auto b = e->ExportBackup("op");
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->keyrings, 2);
  EXPECT_THAT(b->file, Not(HasSubstr(std::string(reinterpret_cast<const char*>(k1_.data()), 32))));
  auto decoded = store::DecodeBackupFile(b->file);
  ASSERT_THAT(decoded, IsOk());
  // One flipped byte anywhere: refused before anything is read.
  for (size_t at : {size_t{3}, b->file.size() / 2, b->file.size() - 1}) {
    std::string bad = b->file;
    bad[at] ^= 1;
    EXPECT_THAT(store::DecodeBackupFile(bad), StatusIs(absl::StatusCode::kDataLoss)) << at;
  }
  EXPECT_THAT(store::DecodeBackupFile(b->file.substr(0, b->file.size() - 10)),
              StatusIs(absl::StatusCode::kDataLoss));
  // A keyring dropped from the message (the SHA-256 trailer recomputed): the MAC says so.
  v1::BackupFile altered = *decoded;
  altered.mutable_keyrings()->RemoveLast();
  store::MemoryStore empty;
  EXPECT_THAT(engine::PlanRestore(empty, *SealerOf(k1_), altered),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(engine::PlanRestore(empty, *SealerOf(k2_), *decoded),
              StatusIs(absl::StatusCode::kFailedPrecondition, SealerOf(k1_)->fingerprint()));
  // Into a fresh data dir, with the KEK rotated meanwhile: every keyring back, resealed with
  // the current KEK, at its revision; tokens verify.
  const std::string fresh = MakeTempDir();
  {
    auto to = *store::FileStore::Open(fresh);
    auto plan = engine::PlanRestore(*to, *SealerOf(k2_, {&k1_}), *decoded);
    ASSERT_THAT(plan, IsOk());
    EXPECT_EQ(plan->replacing(), 0);
    ASSERT_THAT(engine::ApplyRestore(*to, *SealerOf(k2_, {&k1_}), *plan, {}), IsOk());
  }
  for (const std::string& fp : Fingerprints(fresh)) EXPECT_EQ(fp, SealerOf(k2_)->fingerprint());
  auto restored = Open(fresh, SealerOf(k2_), &clock_);
  ASSERT_THAT(restored, IsOk());
  EXPECT_EQ((*restored)->Verify("shop", token, "")->status, format::VerifyStatus::kValid);
  EXPECT_EQ((*(*restored)->Get("shop"))->revision(), (*e->Get("shop"))->revision());
}

TEST_F(KekTest, RestoringOverNewerKeyringsNeedsOverwriteAndSaysWhatComesBack) {
  const std::string dir = MakeTempDir();
  v1::BackupFile backup;
  uint32_t leaked = 0;
  std::string old_token;
  {
    auto e = *Open(dir, SealerOf(k1_), &clock_);
    leaked = (*e->Get("default"))->primary().id();
    old_token = e->Sign("default", "p", "", absl::Hours(1))->token;
    backup = *store::DecodeBackupFile(e->ExportBackup("op")->file);
    ASSERT_THAT(e->Rotate("t", "default", true), IsOk());
    ASSERT_THAT(e->Disable("t", "default", leaked), IsOk());
    ASSERT_THAT(e->Destroy("t", "default", leaked), IsOk());
  }
  auto newer = Fingerprints(dir);
  auto to = *store::FileStore::Open(dir);
  const std::string stored_before = to->Get("default")->data;
  auto plan = engine::PlanRestore(*to, *SealerOf(k1_), backup);
  ASSERT_THAT(plan, IsOk());
  ASSERT_THAT(plan->items, SizeIs(1));
  EXPECT_EQ(plan->replacing(), 1);
  EXPECT_THAT(plan->items[0].description, HasSubstr("REPLACE keyring default"));
  EXPECT_THAT(plan->items[0].description,
              HasSubstr(absl::StrCat("comes back: key ", leaked, " (DESTROYED in the store")));
  EXPECT_THAT(plan->items[0].description, HasSubstr("goes away"));
  EXPECT_THAT(engine::ApplyRestore(*to, *SealerOf(k1_), *plan, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "--overwrite"));
  EXPECT_EQ(to->Get("default")->data, stored_before);  // nothing written
  engine::RestoreOptions overwrite;
  overwrite.overwrite = true;
  ASSERT_THAT(engine::ApplyRestore(*to, *SealerOf(k1_), *plan, overwrite), IsOk());
  to.reset();
  // Written above the high-water mark: the next start needs no --accept_rollback.
  auto e = Open(dir, SealerOf(k1_), &clock_);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ((*(*e)->Get("default"))->revision(), plan->items[0].write_revision);
  EXPECT_EQ((*e)->Verify("default", old_token, "")->status, format::VerifyStatus::kValid);
}

// Revocations (issue 11) are sealed records too: a rewrap reseals them, a backup carries them
// and a restore brings them back, so no revoked session comes back to life.
TEST_F(KekTest, RewrapBackupAndRestoreCarryRevocations) {
  const std::string dir = MakeTempDir();
  auto e = *Open(dir, SealerOf(k1_), &clock_);
  const std::string alice = e->Sign("default", "p", "", absl::Hours(1), nullptr, "alice")->token;
  const std::string bob = e->Sign("default", "p", "", absl::Hours(1), nullptr, "bob")->token;
  const std::string carol = e->Sign("default", "p", "", absl::Hours(1), nullptr, "carol")->token;
  ASSERT_THAT(e->RevokeToken("op", "default", alice, ""), IsOk());
  ASSERT_THAT(e->RevokeSubject("op", "default", "bob"), IsOk());
  ASSERT_THAT(e->ReplaceSealer(SealerOf(k2_, {&k1_})), IsOk());
  auto r = e->RewrapKeyrings("op");
  ASSERT_THAT(r, IsOk());
  EXPECT_GE(r->revocation_records, 1);
  EXPECT_EQ(r->revocation_records_rewrapped, r->revocation_records);
  EXPECT_THAT(r->remaining, IsEmpty());
  EXPECT_EQ(e->Verify("default", alice, "")->status, format::VerifyStatus::kRevoked);

  auto b = e->ExportBackup("op");
  ASSERT_THAT(b, IsOk());
  e.reset();  // the file store's lock
  for (const std::string& fp : Fingerprints(dir)) EXPECT_EQ(fp, SealerOf(k2_)->fingerprint());
  EXPECT_EQ(b->revocation_records, r->revocation_records);
  const v1::BackupFile backup = *store::DecodeBackupFile(b->file);
  EXPECT_THAT(b->file, Not(HasSubstr("alice")));  // subjects stay sealed
  EXPECT_THAT(b->file, Not(HasSubstr("bob")));
  // A revocation list dropped from the backup: the MAC refuses it. One moved to another
  // shard's record (even with a MAC made with the KEK): its sealing refuses it.
  v1::BackupFile dropped = backup, moved = backup;
  for (auto& k : *dropped.mutable_keyrings()) k.clear_revocations();
  store::MemoryStore empty;
  EXPECT_THAT(engine::PlanRestore(empty, *SealerOf(k2_), dropped),
              StatusIs(absl::StatusCode::kDataLoss));
  for (auto& k : *moved.mutable_keyrings()) {
    for (auto& rev : *k.mutable_revocations()) {
      rev.set_record(rev.record() == "_rev.default.000" ? "_rev.default.001" : "_rev.default.000");
    }
  }
  store::SignBackup(*SealerOf(k2_), &moved);
  EXPECT_THAT(engine::PlanRestore(empty, *SealerOf(k2_), moved),
              StatusIs(absl::StatusCode::kDataLoss, "revocations"));
  EXPECT_THAT(empty.List(), IsOk());
  EXPECT_THAT(*empty.List(), IsEmpty());  // nothing written by a refused plan

  const std::string fresh = MakeTempDir();
  {
    auto to = *store::FileStore::Open(fresh);
    auto plan = engine::PlanRestore(*to, *SealerOf(k2_), backup);
    ASSERT_THAT(plan, IsOk());
    EXPECT_THAT(plan->items[0].description, HasSubstr("2 revocation entries"));
    ASSERT_THAT(engine::ApplyRestore(*to, *SealerOf(k2_), *plan, {}), IsOk());
  }
  auto restored = Open(fresh, SealerOf(k2_), &clock_);
  ASSERT_THAT(restored, IsOk());
  EXPECT_EQ((*restored)->Verify("default", alice, "")->status, format::VerifyStatus::kRevoked);
  EXPECT_EQ((*restored)->Verify("default", bob, "")->status, format::VerifyStatus::kRevoked);
  EXPECT_EQ((*restored)->Verify("default", carol, "")->status, format::VerifyStatus::kValid);
}

TEST_F(KekTest, RestoringOverTheStoreKeepsRevocationsMadeSinceTheBackup) {
  const std::string dir = MakeTempDir();
  v1::BackupFile backup;
  std::string alice, bob;
  {
    auto e = *Open(dir, SealerOf(k1_), &clock_);
    alice = e->Sign("default", "p", "", absl::Hours(1), nullptr, "alice")->token;
    bob = e->Sign("default", "p", "", absl::Hours(1), nullptr, "bob")->token;
    ASSERT_THAT(e->RevokeToken("op", "default", alice, ""), IsOk());
    backup = *store::DecodeBackupFile(e->ExportBackup("op")->file);
    ASSERT_THAT(e->RevokeToken("op", "default", bob, ""), IsOk());  // after the backup
  }
  {
    auto to = *store::FileStore::Open(dir);
    auto plan = engine::PlanRestore(*to, *SealerOf(k1_), backup);
    ASSERT_THAT(plan, IsOk());
    engine::RestoreOptions overwrite;
    overwrite.overwrite = true;
    ASSERT_THAT(engine::ApplyRestore(*to, *SealerOf(k1_), *plan, overwrite), IsOk());
  }
  auto e = Open(dir, SealerOf(k1_), &clock_);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ((*e)->Verify("default", alice, "")->status, format::VerifyStatus::kRevoked);
  EXPECT_EQ((*e)->Verify("default", bob, "")->status, format::VerifyStatus::kRevoked);
}

}  // namespace
}  // namespace sessiontoken
