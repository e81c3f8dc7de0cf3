// Settings: everything the server needs to start, as one plain struct, resolved from the
// command line and the config file (a flag given on the command line wins, then the file,
// then the defaults below, which the flags also use) and checked once.
#ifndef SESSIONTOKEN_SERVER_APP_SETTINGS_H_
#define SESSIONTOKEN_SERVER_APP_SETTINGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/app/log.h"
#include "server/engine/limits.h"
#include "sessiontoken/v1/config.pb.h"

namespace sessiontoken::app {

struct TlsSettings {
  std::string cert_file;  // enables TLS (with key_file)
  std::string key_file;
  std::string client_ca_file;  // requires client certificates (mTLS)
  absl::Duration reload_interval = absl::Seconds(10);
};

// The etcd store (store == "etcd"); defaults as in store::EtcdOptions and ReplicaOptions.
struct EtcdSettings {
  std::vector<std::string> endpoints;
  std::string prefix = "/sessiontoken/";
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string username;
  std::string password_file;
  std::string replica_id;  // "" = the host name
  absl::Duration presence_ttl = absl::Seconds(10);
  absl::Duration resync_interval = absl::Seconds(60);
};

struct Settings {
  std::string listen = "127.0.0.1:50051";
  std::string http_listen;  // the HTTP/JSON gateway's host:port; "" = off
  std::string data_dir = "data";
  std::string kek_file;
  std::string kek_env = "SESSIONTOKEN_KEK";
  // KEKs of an earlier KEK rotation step: records sealed with them still open; nothing is
  // sealed with them (docs/operations.md, "Runbook: KEK rotation").
  std::vector<std::string> previous_kek_files;
  bool dev_kek = false;                // command line only
  bool insecure = false;               // plaintext off loopback
  bool allow_unauthenticated = false;  // no authentication off loopback
  absl::Duration shutdown_grace = absl::Seconds(10);
  absl::Duration scheduler_interval = absl::Seconds(1);
  absl::Duration admin_deadline = absl::Seconds(10);
  // Connections are closed (GOAWAY) after this long; in-flight calls on them get
  // shutdown_grace. Zero = never (gRPC's default).
  absl::Duration max_connection_age = absl::ZeroDuration();
  std::string default_keyring = "default";
  std::string audit_log;  // "" = off, "-" = stdout
  engine::Limits limits;
  int32_t max_batch_items = 1000;
  int32_t max_message_bytes = 1 << 20;
  int32_t max_concurrent_streams = 256;
  TlsSettings tls;
  v1::AuthConfig auth;
  std::vector<v1::KeyringConfig> keyrings;  // created / updated at start
  std::string store = "file";               // "file" or "etcd"
  EtcdSettings etcd;
  // Keyrings that may load below their high-water mark (a backup restored on purpose);
  // command line only, for one start.
  std::vector<std::string> accept_rollback;
  // Prometheus metrics listener, host:port ("" = off).
  std::string metrics_listen;
  LogFormat log_format = LogFormat::kText;
  // One log line per finished RPC (method, code, latency); command line only, off by default.
  bool log_calls = false;
};

// What the command line said, beyond the config file's fields.
struct CommandLine {
  v1::ServerConfig given;  // the flags given on the command line, as config fields
  bool dev_kek = false;
  bool no_default_keyring = false;  // --default_keyring="" was given
  std::vector<std::string> accept_rollback;
  bool log_calls = false;
};

// Resolves `file` (the parsed config file; empty when none) overridden by the command line.
// In both, zero values mean "not set". InvalidArgument naming the setting when a value is
// out of range or the combination is inconsistent (e.g. a TLS key without a certificate).
absl::StatusOr<Settings> ResolveSettings(const v1::ServerConfig& file,
                                         const CommandLine& command_line);

}  // namespace sessiontoken::app

#endif  // SESSIONTOKEN_SERVER_APP_SETTINGS_H_
