#include "server/config/config.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::config {
namespace {

using ::sessiontoken::testing::IsOk;
using ::testing::Not;

const absl::Duration kMax = absl::Hours(24 * 31);

TEST(ConfigTest, ParsesAFullConfig) {
  auto cfg = ParseConfig(R"pb(
                           listen: "127.0.0.1:7000"
                           data_dir: "/var/lib/sessiontoken"
                           kek_file: "/run/secrets/kek"
                           audit_log: "-"
                           limits {
                             max_payload_bytes: 1024
                             max_ttl { seconds: 86400 }
                             max_batch_items: 50
                           }
                           keyrings {
                             name: "shop"
                             algorithm: HMAC_SHA256
                             policy {
                               rotation_period { seconds: 2592000 }
                               verify_window { seconds: 86400 }
                             }
                           }
                           keyrings { name: "legacy" algorithm: HMAC_SHA1_FLASK }
                         )pb",
                         "test.textproto", std::nullopt, kMax);
  ASSERT_THAT(cfg, IsOk()) << cfg.status();
  EXPECT_EQ(cfg->listen(), "127.0.0.1:7000");
  EXPECT_EQ(cfg->limits().max_batch_items(), 50);
  ASSERT_EQ(cfg->keyrings_size(), 2);
  EXPECT_EQ(cfg->keyrings(1).algorithm(), v1::HMAC_SHA1_FLASK);
}

void ExpectError(absl::string_view text, absl::string_view want1, absl::string_view want2) {
  auto cfg = ParseConfig(text, "bad.textproto", std::nullopt, kMax);
  ASSERT_THAT(cfg, Not(IsOk())) << text;
  EXPECT_TRUE(absl::StrContains(cfg.status().message(), want1)) << cfg.status();
  EXPECT_TRUE(absl::StrContains(cfg.status().message(), want2)) << cfg.status();
  EXPECT_TRUE(absl::StrContains(cfg.status().message(), "bad.textproto")) << cfg.status();
}

TEST(ConfigTest, ErrorsNameTheFieldAndLine) {
  ExpectError("listen: \"a\"\nlisten_typo: 3\n", "line 2", "listen_typo");
  ExpectError("listen: 5\n", "line 1", "");
  ExpectError("keyrings { name: \"ok\" }\nkeyrings {\n name: \"Not OK\"\n}\n", "line 2",
              "keyrings[1].name");
  ExpectError("keyrings { name: \"a\" }\n\nkeyrings { name: \"a\" }\n", "line 3", "listed twice");
  ExpectError(
      "keyrings {\n name: \"a\"\n policy { verify_window { seconds: 60 } max_token_ttl { "
      "seconds: 120 } }\n}\n",
      "line 1", "max_token_ttl");
  ExpectError("limits { max_payload_bytes: 5000 }\n", "line 1", "limits.max_payload_bytes");
}

TEST(ConfigTest, MaxTtlOverrideDecidesPolicyChecks) {
  const char* text = "keyrings { name: \"a\" policy { verify_window { seconds: 3600 } } }";
  // With the server's max TTL (31 days), a 1 h verify window is too short...
  EXPECT_THAT(ParseConfig(text, "c", std::nullopt, kMax), Not(IsOk()));
  // ...but fine once the server's max TTL is 1 h (flag override).
  EXPECT_THAT(ParseConfig(text, "c", absl::Hours(1), kMax), IsOk());
  EXPECT_THAT(ParseConfig(std::string(text) + " limits { max_ttl { seconds: 3600 } }", "c",
                          std::nullopt, kMax),
              IsOk());
}

TEST(ConfigTest, MissingFile) {
  auto cfg = LoadConfigFile("/nonexistent/sessiontoken.textproto", std::nullopt, kMax);
  EXPECT_TRUE(absl::IsNotFound(cfg.status()));
}

}  // namespace
}  // namespace sessiontoken::config
