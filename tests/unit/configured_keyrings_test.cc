// app::ApplyConfiguredKeyrings: creates missing keyrings, applies changed policies, leaves
// unchanged ones alone, and names the keyring when one cannot be applied.
#include "server/app/configured_keyrings.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/crypto/random.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/memory_store.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::app {
namespace {

using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;

class ConfiguredKeyringsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sealer = store::Sealer::New(crypto::RandomSecret(32));
    ASSERT_THAT(sealer, IsOk());
    auto e = engine::Engine::New(std::make_unique<store::MemoryStore>(), *std::move(sealer),
                                 &clock_, {});
    ASSERT_THAT(e, IsOk());
    engine_ = *std::move(e);
  }
  static v1::KeyringConfig Keyring(const char* name, int64_t rotation_seconds,
                                   v1::Algorithm algorithm = v1::ALGORITHM_UNSPECIFIED) {
    v1::KeyringConfig k;
    k.set_name(name);
    k.set_algorithm(algorithm);
    if (rotation_seconds > 0)
      k.mutable_policy()->mutable_rotation_period()->set_seconds(rotation_seconds);
    return k;
  }

  keyring::FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  std::unique_ptr<engine::Engine> engine_;
};

TEST_F(ConfiguredKeyringsTest, CreatesMissingKeyringsWithTheirAlgorithmAndPolicy) {
  ASSERT_THAT(ApplyConfiguredKeyrings(
                  *engine_, {Keyring("shop", 86400), Keyring("legacy", 0, v1::HMAC_SHA1_FLASK)}),
              IsOk());
  auto shop = engine_->Get("shop");
  ASSERT_THAT(shop, IsOk());
  EXPECT_EQ((*shop)->policy().rotation_period().seconds(), 86400);
  EXPECT_EQ((*shop)->primary().algorithm(), v1::HMAC_SHA256);
  auto legacy = engine_->Get("legacy");
  ASSERT_THAT(legacy, IsOk());
  EXPECT_EQ((*legacy)->primary().algorithm(), v1::HMAC_SHA1_FLASK);
}

TEST_F(ConfiguredKeyringsTest, AppliesAChangedPolicyAndLeavesAnUnchangedOneAlone) {
  ASSERT_THAT(ApplyConfiguredKeyrings(*engine_, {Keyring("shop", 86400)}), IsOk());
  const uint64_t created = (*engine_->Get("shop"))->revision();
  ASSERT_THAT(ApplyConfiguredKeyrings(*engine_, {Keyring("shop", 86400)}), IsOk());
  EXPECT_EQ((*engine_->Get("shop"))->revision(), created);  // same policy: no write
  ASSERT_THAT(ApplyConfiguredKeyrings(*engine_, {Keyring("shop", 3600)}), IsOk());
  auto shop = engine_->Get("shop");
  EXPECT_EQ((*shop)->revision(), created + 1);
  EXPECT_EQ((*shop)->policy().rotation_period().seconds(), 3600);
}

TEST_F(ConfiguredKeyringsTest, NamesTheKeyringThatFailsAndKeepsTheOnesBefore) {
  v1::KeyringConfig bad = Keyring("bad", 3600);
  bad.mutable_policy()->mutable_stage_lead_time()->set_seconds(7200);  // >= rotation period
  EXPECT_THAT(ApplyConfiguredKeyrings(*engine_, {Keyring("first", 0), bad}),
              StatusIs(absl::StatusCode::kInvalidArgument, "config keyring bad"));
  EXPECT_THAT(engine_->Get("first"), IsOk());
  EXPECT_THAT(engine_->Get("bad"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace sessiontoken::app
