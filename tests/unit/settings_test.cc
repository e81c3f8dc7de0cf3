// app::ResolveSettings: command line over config file over defaults, zero = unset, and the
// checks that refuse a start.
#include "server/app/settings.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace sessiontoken::app {
namespace {

using ::sessiontoken::testing::IsOk;
using ::sessiontoken::testing::StatusIs;

v1::ServerConfig Config(const char* text) {
  v1::ServerConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  return c;
}

TEST(SettingsTest, DefaultsWhenNothingIsSet) {
  absl::StatusOr<Settings> s = ResolveSettings({}, {});
  ASSERT_THAT(s, IsOk());
  const Settings defaults;
  EXPECT_EQ(s->listen, defaults.listen);
  EXPECT_EQ(s->data_dir, "data");
  EXPECT_EQ(s->default_keyring, "default");
  EXPECT_EQ(s->limits.max_payload_bytes, engine::kDefaultMaxPayloadBytes);
  EXPECT_EQ(s->limits.max_ttl, engine::kDefaultMaxTtl);
  EXPECT_EQ(s->limits.max_clock_skew, engine::kDefaultMaxClockSkew);
  EXPECT_EQ(s->max_batch_items, 1000);
  EXPECT_EQ(s->scheduler_interval, absl::Seconds(1));
  EXPECT_FALSE(s->dev_kek);
  EXPECT_FALSE(s->insecure);
  EXPECT_FALSE(s->allow_unauthenticated);
  // Set in the file (or by --allow_unauthenticated): resolved as given.
  absl::StatusOr<Settings> allowed = ResolveSettings(Config("allow_unauthenticated: true"), {});
  ASSERT_THAT(allowed, IsOk());
  EXPECT_TRUE(allowed->allow_unauthenticated);
}

TEST(SettingsTest, FileOverridesDefaultsAndCommandLineOverridesFile) {
  v1::ServerConfig file = Config(R"pb(
    listen: "127.0.0.1:7000"
    data_dir: "/var/lib/st"
    limits {
      max_payload_bytes: 1024
      max_ttl { seconds: 3600 }
      max_batch_items: 50
    }
    scheduler_interval { seconds: 5 }
    tls { cert_file: "c.pem" key_file: "k.pem" }
    keyrings { name: "shop" }
  )pb");
  CommandLine cl;
  cl.given = Config(R"pb(
    listen: "127.0.0.1:9000"
    limits { max_ttl { seconds: 7200 } }
    scheduler_interval { seconds: 0 }
  )pb");
  cl.dev_kek = true;
  absl::StatusOr<Settings> s = ResolveSettings(file, cl);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->listen, "127.0.0.1:9000");                  // command line wins
  EXPECT_EQ(s->data_dir, "/var/lib/st");                   // file, not on the command line
  EXPECT_EQ(s->limits.max_payload_bytes, 1024u);           // file
  EXPECT_EQ(s->limits.max_ttl, absl::Hours(2));            // command line, inside a message
  EXPECT_EQ(s->max_batch_items, 50);                       // file, beside it
  EXPECT_EQ(s->scheduler_interval, absl::ZeroDuration());  // an explicit 0 is a value
  EXPECT_EQ(s->tls.cert_file, "c.pem");
  EXPECT_TRUE(s->dev_kek);
  ASSERT_EQ(s->keyrings.size(), 1u);
  EXPECT_EQ(s->keyrings[0].name(), "shop");
}

TEST(SettingsTest, EmptyDefaultKeyringOnlyFromTheCommandLine) {
  CommandLine cl;
  cl.no_default_keyring = true;
  absl::StatusOr<Settings> s = ResolveSettings(Config("default_keyring: \"web\""), cl);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->default_keyring, "");
  EXPECT_EQ(ResolveSettings(Config("default_keyring: \"web\""), {})->default_keyring, "web");
}

TEST(SettingsTest, PreviousKekFilesFromTheFileUnlessTheCommandLineGivesThem) {
  const v1::ServerConfig file =
      Config("previous_kek_files: \"/k/old1\" previous_kek_files: \"/k/old2\"");
  EXPECT_EQ(ResolveSettings(file, {})->previous_kek_files,
            (std::vector<std::string>{"/k/old1", "/k/old2"}));
  CommandLine cl;
  cl.given.add_previous_kek_files("/k/other");
  EXPECT_EQ(ResolveSettings(file, cl)->previous_kek_files, std::vector<std::string>{"/k/other"});
  EXPECT_TRUE(ResolveSettings({}, {})->previous_kek_files.empty());
}

TEST(SettingsTest, RefusesOutOfRangeLimitsNamingTheSetting) {
  CommandLine cl;
  cl.given = Config("limits { max_payload_bytes: 3001 }");
  EXPECT_THAT(ResolveSettings({}, cl),
              StatusIs(absl::StatusCode::kInvalidArgument, "limits.max_payload_bytes"));
  cl.given = Config("limits { max_ttl { seconds: 0 } }");
  EXPECT_THAT(ResolveSettings({}, cl), StatusIs(absl::StatusCode::kInvalidArgument, "max_ttl"));
  cl.given = Config("limits { max_clock_skew { seconds: 90000 } }");
  EXPECT_THAT(ResolveSettings({}, cl),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_clock_skew"));
  cl.given = Config("limits { max_clock_skew { seconds: -1 } }");
  EXPECT_THAT(ResolveSettings({}, cl),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_clock_skew"));
  cl.given = Config("shutdown_grace { seconds: -1 }");
  EXPECT_THAT(ResolveSettings({}, cl), StatusIs(absl::StatusCode::kInvalidArgument, "negative"));
}

TEST(SettingsTest, RefusesInconsistentTls) {
  EXPECT_THAT(ResolveSettings(Config("tls { cert_file: \"c.pem\" }"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "together"));
  EXPECT_THAT(ResolveSettings(Config("tls { client_ca_file: \"ca.pem\" }"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "tls_client_ca"));
}

TEST(SettingsTest, EtcdStoreFromFileAndCommandLine) {
  absl::StatusOr<Settings> plain = ResolveSettings({}, {});
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(plain->store, "file");
  EXPECT_EQ(plain->etcd.prefix, "/sessiontoken/");
  EXPECT_EQ(plain->etcd.presence_ttl, absl::Seconds(10));
  EXPECT_EQ(plain->etcd.resync_interval, absl::Seconds(60));

  const v1::ServerConfig file = Config(R"pb(
    store: "etcd"
    etcd {
      endpoints: "10.0.0.1:2379"
      endpoints: "10.0.0.2:2379"
      prefix: "/team/"
      replica_id: "from-file"
      presence_ttl { seconds: 5 }
    }
  )pb");
  absl::StatusOr<Settings> s = ResolveSettings(file, {});
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->store, "etcd");
  EXPECT_EQ(s->etcd.endpoints, (std::vector<std::string>{"10.0.0.1:2379", "10.0.0.2:2379"}));
  EXPECT_EQ(s->etcd.prefix, "/team/");
  EXPECT_EQ(s->etcd.replica_id, "from-file");
  EXPECT_EQ(s->etcd.presence_ttl, absl::Seconds(5));

  // Endpoints on the command line replace the file's list rather than adding to it.
  CommandLine cl;
  cl.given.mutable_etcd()->add_endpoints("127.0.0.1:2379");
  cl.given.mutable_etcd()->set_replica_id("r1");
  s = ResolveSettings(file, cl);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->etcd.endpoints, (std::vector<std::string>{"127.0.0.1:2379"}));
  EXPECT_EQ(s->etcd.replica_id, "r1");
  EXPECT_EQ(s->etcd.prefix, "/team/");
}

TEST(SettingsTest, RefusesIncompleteEtcdSettings) {
  EXPECT_THAT(ResolveSettings(Config(R"pb(store: "zookeeper")pb"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "store: \"zookeeper\""));
  EXPECT_THAT(ResolveSettings(Config(R"pb(store: "etcd")pb"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "etcd_endpoints: required"));
  EXPECT_THAT(ResolveSettings(Config(R"pb(store: "etcd"
                                          etcd { endpoints: "h:1" cert_file: "c" })pb"),
                              {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "etcd_key_file"));
  EXPECT_THAT(ResolveSettings(Config(R"pb(store: "etcd"
                                          etcd { endpoints: "h:1" password_file: "p" })pb"),
                              {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "etcd_user"));
  EXPECT_THAT(ResolveSettings(Config(R"pb(store: "etcd"
                                          etcd {
                                            endpoints: "h:1"
                                            presence_ttl { seconds: 1 }
                                          })pb"),
                              {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "presence_ttl"));
}

TEST(SettingsTest, MaxConnectionAgeOffByDefaultFromFileOrCommandLine) {
  absl::StatusOr<Settings> s = ResolveSettings({}, {});
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->max_connection_age, absl::ZeroDuration());  // gRPC's default: never
  const v1::ServerConfig file = Config("max_connection_age { seconds: 300 }");
  s = ResolveSettings(file, {});
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->max_connection_age, absl::Minutes(5));
  CommandLine cl;
  cl.given = Config("max_connection_age { seconds: 60 }");
  s = ResolveSettings(file, cl);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->max_connection_age, absl::Minutes(1));  // the command line wins
  cl.given = Config("max_connection_age { seconds: 0 }");
  s = ResolveSettings(file, cl);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->max_connection_age, absl::ZeroDuration());  // an explicit 0 turns it off
}

TEST(SettingsTest, RefusesMaxConnectionAgeGrpcCannotHold) {
  EXPECT_THAT(ResolveSettings(Config("max_connection_age { seconds: -1 }"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "negative"));
  // gRPC takes int milliseconds: 2^31 ms is about 24.9 days.
  EXPECT_THAT(ResolveSettings(Config("max_connection_age { seconds: 2147484 }"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_connection_age"));
  EXPECT_THAT(ResolveSettings(Config("max_connection_age { seconds: 2147483 }"), {}), IsOk());
}

TEST(SettingsTest, HttpGatewayIsOffByDefaultAndSetLikeListen) {
  EXPECT_EQ(ResolveSettings({}, {})->http_listen, "");
  EXPECT_EQ(ResolveSettings(Config("http_listen: \"127.0.0.1:8080\""), {})->http_listen,
            "127.0.0.1:8080");
  CommandLine cl;
  cl.given = Config("http_listen: \"127.0.0.1:9090\"");
  EXPECT_EQ(ResolveSettings(Config("http_listen: \"127.0.0.1:8080\""), cl)->http_listen,
            "127.0.0.1:9090");
  // Both on port 0 (tests): two different free ports.
  cl.given = Config("listen: \"127.0.0.1:0\" http_listen: \"127.0.0.1:0\"");
  EXPECT_THAT(ResolveSettings({}, cl), IsOk());
}

TEST(SettingsTest, RefusesABadHttpGatewayAddress) {
  for (const char* bad : {"8080", "127.0.0.1:", ":8080", "127.0.0.1"}) {
    CommandLine cl;
    cl.given.set_http_listen(bad);
    EXPECT_THAT(ResolveSettings({}, cl),
                StatusIs(absl::StatusCode::kInvalidArgument, "http_listen"))
        << bad;
  }
  CommandLine same;
  same.given = Config("listen: \"127.0.0.1:7000\" http_listen: \"127.0.0.1:7000\"");
  EXPECT_THAT(ResolveSettings({}, same),
              StatusIs(absl::StatusCode::kInvalidArgument, "must differ from listen"));
}

TEST(SettingsTest, MetricsListenerIsOffByDefaultAndFromFileOrCommandLine) {
  absl::StatusOr<Settings> s = ResolveSettings({}, {});
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->metrics_listen, "");  // off: nothing binds
  EXPECT_EQ(s->log_format, LogFormat::kText);
  EXPECT_FALSE(s->log_calls);
  CommandLine cl;
  cl.given = Config(R"pb(metrics_listen: "127.0.0.1:9100")pb");
  cl.log_calls = true;
  s = ResolveSettings(Config(R"pb(metrics_listen: "127.0.0.1:9464" log_format: "json")pb"), cl);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->metrics_listen, "127.0.0.1:9100");  // command line wins
  EXPECT_EQ(s->log_format, LogFormat::kJson);      // file
  EXPECT_TRUE(s->log_calls);
}

TEST(SettingsTest, RefusesAMetricsAddressWithoutHostAndAnUnknownLogFormat) {
  for (const char* bad :
       {"metrics_listen: \"9464\"", "metrics_listen: \":9464\"", "metrics_listen: \"127.0.0.1\""}) {
    EXPECT_THAT(ResolveSettings(Config(bad), {}),
                StatusIs(absl::StatusCode::kInvalidArgument, "metrics_listen"))
        << bad;
  }
  EXPECT_THAT(ResolveSettings(Config(R"pb(log_format: "xml")pb"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "log_format"));
}

TEST(LogTest, JsonLinesAreOneEscapedObjectWithFields) {
  const absl::Time t = absl::FromUnixMillis(1800000000123);
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, t, "INFO", "say \"hi\"\n", {{"k", "v\\"}}),
            R"({"time":"2027-01-15T08:00:00.123Z","level":"INFO","message":"say \"hi\"\n",)"
            R"("fields":{"k":"v\\"}})");
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, t, "WARNING", "x"),
            R"({"time":"2027-01-15T08:00:00.123Z","level":"WARNING","message":"x","fields":{}})");
  // Bytes that are not ASCII are escaped one by one: the line stays valid JSON.
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, t, "INFO", "\xff"),
            R"({"time":"2027-01-15T08:00:00.123Z","level":"INFO","message":"\u00ff","fields":{}})");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, t, "INFO", "call", {{"method", "m"}, {"code", "OK"}}),
            "2027-01-15T08:00:00Z INFO call method=m code=OK");
  EXPECT_THAT(ParseLogFormat("json"), IsOk());
  EXPECT_THAT(ParseLogFormat(""), IsOk());
  EXPECT_THAT(ParseLogFormat("JSON"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sessiontoken::app
