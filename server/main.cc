// sessiontoken-server: flags, wiring, signals and graceful shutdown. Settings are resolved
// by server/app/settings.h, credentials by server/app/credentials.h; this file only wires the
// engine, the services and the scheduler together, in the style of gRPC's examples.
#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/app/configured_keyrings.h"
#include "server/app/credentials.h"
#include "server/app/log.h"
#include "server/app/observability.h"
#include "server/app/open_store.h"
#include "server/app/settings.h"
#include "server/config/config.h"
#include "server/engine/audit.h"
#include "server/engine/engine.h"
#include "server/engine/replica.h"
#include "server/engine/scheduler.h"
#include "server/gateway/http_server.h"
#include "server/gateway/json_gateway.h"
#include "server/metrics/collector.h"
#include "server/service/access_policy.h"
#include "server/service/admin_service.h"
#include "server/service/auth.h"
#include "server/service/tokens_service.h"
#include "server/store/etcd_store.h"
#include "server/store/file_store.h"
#include "server/store/sealer.h"

namespace {
const sessiontoken::app::Settings kDefaults;
}  // namespace

ABSL_FLAG(std::string, listen, kDefaults.listen,
          "Address to listen on (host:port; port 0 picks a free port, printed at start-up)");
ABSL_FLAG(std::string, http_listen, "",
          "Serve the HTTP/JSON gateway on this host:port (empty: off; docs/http-gateway.md)");
ABSL_FLAG(std::string, data_dir, kDefaults.data_dir,
          "Directory of the file keyring store (created 0700)");
ABSL_FLAG(std::string, kek_file, "",
          "File holding the key-encryption key (64 hex chars or base64 of 32 bytes)");
ABSL_FLAG(std::vector<std::string>, previous_kek_files, {},
          "KEK files of an earlier rotation step (comma-separated): keyrings sealed with them "
          "still open; every write seals with the current KEK. Re-read with --kek_file on "
          "SIGHUP (docs/operations.md, KEK rotation)");
ABSL_FLAG(std::string, kek_env, kDefaults.kek_env,
          "Environment variable holding the KEK, used when --kek_file is not set");
ABSL_FLAG(bool, dev_kek, false,
          "Development only: generate/use an unprotected KEK in <data_dir>/dev-kek when no KEK "
          "is configured");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "On SIGTERM/SIGINT: how long in-flight calls may take before they are cancelled");
ABSL_FLAG(absl::Duration, max_connection_age, kDefaults.max_connection_age,
          "Close each client connection (GOAWAY) after this long so that clients re-resolve "
          "DNS and spread over new replicas; in-flight calls get --shutdown_grace (0 = never)");
ABSL_FLAG(int64_t, max_payload_bytes, kDefaults.limits.max_payload_bytes,
          "Largest native-token payload Sign accepts (at most 3000; Flask-format keyrings are "
          "limited by the compressed cookie's size, 4095 bytes)");
ABSL_FLAG(absl::Duration, max_ttl, kDefaults.limits.max_ttl, "Longest token TTL Sign accepts");
ABSL_FLAG(absl::Duration, max_clock_skew, kDefaults.limits.max_clock_skew,
          "How far in the future a token's issued-at may be before NOT_YET_VALID");
ABSL_FLAG(int32_t, max_revocations, static_cast<int32_t>(kDefaults.limits.max_revocations),
          "Revocation entries a keyring may hold (at most 200000); Revoke answers "
          "RESOURCE_EXHAUSTED at the cap (docs/revocation.md)");
ABSL_FLAG(std::string, default_keyring, kDefaults.default_keyring,
          "Keyring created on first start (empty: none)");
ABSL_FLAG(std::string, config, "",
          "Server config file in protobuf text format (proto/sessiontoken/v1/config.proto); "
          "flags given on the command line override it");
ABSL_FLAG(std::string, audit_log, "",
          "Append one JSON line per admin operation to this file ('-' = stdout; empty = off)");
ABSL_FLAG(absl::Duration, scheduler_interval, kDefaults.scheduler_interval,
          "How often the scheduler applies due policy transitions (0 = never)");
ABSL_FLAG(int32_t, max_batch_items, kDefaults.max_batch_items,
          "Most items in one BatchSign/BatchVerify request");
ABSL_FLAG(int32_t, max_message_bytes, kDefaults.max_message_bytes,
          "Largest request message the server accepts");
ABSL_FLAG(int32_t, max_concurrent_streams, kDefaults.max_concurrent_streams,
          "Concurrent calls per client connection");
ABSL_FLAG(std::string, tls_cert, "", "Server certificate chain (PEM); enables TLS");
ABSL_FLAG(std::string, tls_key, "", "Private key of --tls_cert (PEM)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA bundle (PEM): require and verify client certificates (mTLS)");
ABSL_FLAG(absl::Duration, tls_reload_interval, kDefaults.tls.reload_interval,
          "How often certificate files are checked for changes (reloaded without restart)");
ABSL_FLAG(absl::Duration, admin_deadline, kDefaults.admin_deadline,
          "Server-side default deadline of admin changes: how long one may wait for others "
          "before failing with DEADLINE_EXCEEDED (nothing changed)");
ABSL_FLAG(std::vector<std::string>, accept_rollback, {},
          "Keyrings (comma-separated) allowed to load below their high-water mark, once: for "
          "an operator restoring a backup on purpose (keys destroyed since come back)");
ABSL_FLAG(bool, insecure, false,
          "Allow plaintext (no TLS) on a non-loopback --listen address. Never in production");
ABSL_FLAG(std::string, store, kDefaults.store,
          "Where keyrings live: file (--data_dir; one server) or etcd (replicas sharing every "
          "keyring; see docs/etcd-store.md)");
ABSL_FLAG(std::vector<std::string>, etcd_endpoints, {},
          "etcd members, host:port,host:port,... (calls fail over between them)");
ABSL_FLAG(std::string, etcd_prefix, kDefaults.etcd.prefix, "Key prefix of sessiontoken's records");
ABSL_FLAG(std::string, etcd_ca_file, "", "PEM CA bundle for TLS to etcd (empty: plaintext)");
ABSL_FLAG(std::string, etcd_cert_file, "", "PEM client certificate for etcd mutual TLS");
ABSL_FLAG(std::string, etcd_key_file, "", "PEM client key for etcd mutual TLS");
ABSL_FLAG(std::string, etcd_user, "", "etcd user (empty: no etcd authentication)");
ABSL_FLAG(std::string, etcd_password_file, "", "File holding the etcd user's password");
ABSL_FLAG(std::string, replica_id, "",
          "This replica's id among those sharing the etcd store (default: the host name)");
ABSL_FLAG(absl::Duration, presence_ttl, kDefaults.etcd.presence_ttl,
          "etcd store: lease TTL of this replica's presence (how long a replica that stopped "
          "answering holds up promotions)");
ABSL_FLAG(absl::Duration, resync_interval, kDefaults.etcd.resync_interval,
          "etcd store: full reload every this often, besides the watch (0 = never)");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus metrics at http://HOST:PORT/metrics (host:port; empty = off). Binds "
          "exactly this address; metrics carry no token, payload or key");
ABSL_FLAG(std::string, log_format, "text",
          "Server log lines on stderr: text, or json (one object per line)");
ABSL_FLAG(bool, log_calls, false,
          "Log one line per finished RPC (method, status code, latency; never a request)");
ABSL_FLAG(bool, print_metric_names, false,
          "Print the name of every metric family the server can export, and exit");
ABSL_FLAG(bool, allow_unauthenticated, false,
          "Serve a non-loopback --listen address without authentication (no API tokens, rules "
          "or mTLS configured): only behind your own authenticating proxy. Logged loudly");

namespace sessiontoken {
namespace {

using app::Log;

// True when the flag was set to something other than its default (this Abseil version
// does not expose "specified on the command line"): then it overrides the config file.
bool Given(absl::string_view flag) {
  const absl::CommandLineFlag* f = absl::FindCommandLineFlag(flag);
  return f != nullptr && f->CurrentValue() != f->DefaultValue();
}

void SetDuration(google::protobuf::Duration* out, absl::Duration d) {
  out->set_seconds(absl::ToInt64Seconds(d));
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d % absl::Seconds(1))));
}

// The etcd store's flags given on the command line, as config fields.
void GivenEtcdFlags(v1::ServerConfig* config) {
  v1::ServerConfig& c = *config;
  auto str = [&](const absl::Flag<std::string>& f, absl::string_view name, std::string* out) {
    if (Given(name)) *out = absl::GetFlag(f);
  };
  str(FLAGS_store, "store", c.mutable_store());
  str(FLAGS_etcd_prefix, "etcd_prefix", c.mutable_etcd()->mutable_prefix());
  str(FLAGS_etcd_ca_file, "etcd_ca_file", c.mutable_etcd()->mutable_ca_file());
  str(FLAGS_etcd_cert_file, "etcd_cert_file", c.mutable_etcd()->mutable_cert_file());
  str(FLAGS_etcd_key_file, "etcd_key_file", c.mutable_etcd()->mutable_key_file());
  str(FLAGS_etcd_user, "etcd_user", c.mutable_etcd()->mutable_username());
  str(FLAGS_etcd_password_file, "etcd_password_file", c.mutable_etcd()->mutable_password_file());
  str(FLAGS_replica_id, "replica_id", c.mutable_etcd()->mutable_replica_id());
  // Only flags given touch the config: a message created empty would read as "set to 0".
  if (Given("presence_ttl")) {
    SetDuration(c.mutable_etcd()->mutable_presence_ttl(), absl::GetFlag(FLAGS_presence_ttl));
  }
  if (Given("resync_interval")) {
    SetDuration(c.mutable_etcd()->mutable_resync_interval(), absl::GetFlag(FLAGS_resync_interval));
  }
  for (const std::string& e : absl::GetFlag(FLAGS_etcd_endpoints)) {
    if (!e.empty()) c.mutable_etcd()->add_endpoints(e);
  }
}

// The flags given on the command line, as config fields (app::ResolveSettings merges them
// over the config file).
app::CommandLine GivenFlags() {
  app::CommandLine cl;
  v1::ServerConfig& c = cl.given;
  auto str = [&](const absl::Flag<std::string>& f, absl::string_view name, std::string* out) {
    if (Given(name)) *out = absl::GetFlag(f);
  };
  auto dur = [&](const absl::Flag<absl::Duration>& f, absl::string_view name,
                 google::protobuf::Duration* (*field)(v1::ServerConfig&)) {
    if (Given(name)) SetDuration(field(c), absl::GetFlag(f));
  };
  str(FLAGS_listen, "listen", c.mutable_listen());
  str(FLAGS_http_listen, "http_listen", c.mutable_http_listen());
  str(FLAGS_data_dir, "data_dir", c.mutable_data_dir());
  str(FLAGS_kek_file, "kek_file", c.mutable_kek_file());
  str(FLAGS_kek_env, "kek_env", c.mutable_kek_env());
  for (const std::string& f : absl::GetFlag(FLAGS_previous_kek_files)) {
    if (!f.empty()) c.add_previous_kek_files(f);
  }
  str(FLAGS_default_keyring, "default_keyring", c.mutable_default_keyring());
  str(FLAGS_audit_log, "audit_log", c.mutable_audit_log());
  str(FLAGS_metrics_listen, "metrics_listen", c.mutable_metrics_listen());
  str(FLAGS_log_format, "log_format", c.mutable_log_format());
  str(FLAGS_tls_cert, "tls_cert", c.mutable_tls()->mutable_cert_file());
  str(FLAGS_tls_key, "tls_key", c.mutable_tls()->mutable_key_file());
  str(FLAGS_tls_client_ca, "tls_client_ca", c.mutable_tls()->mutable_client_ca_file());
  dur(FLAGS_shutdown_grace, "shutdown_grace",
      [](v1::ServerConfig& x) { return x.mutable_shutdown_grace(); });
  dur(FLAGS_scheduler_interval, "scheduler_interval",
      [](v1::ServerConfig& x) { return x.mutable_scheduler_interval(); });
  dur(FLAGS_admin_deadline, "admin_deadline",
      [](v1::ServerConfig& x) { return x.mutable_admin_deadline(); });
  dur(FLAGS_max_connection_age, "max_connection_age",
      [](v1::ServerConfig& x) { return x.mutable_max_connection_age(); });
  dur(FLAGS_max_ttl, "max_ttl",
      [](v1::ServerConfig& x) { return x.mutable_limits()->mutable_max_ttl(); });
  dur(FLAGS_max_clock_skew, "max_clock_skew",
      [](v1::ServerConfig& x) { return x.mutable_limits()->mutable_max_clock_skew(); });
  dur(FLAGS_tls_reload_interval, "tls_reload_interval",
      [](v1::ServerConfig& x) { return x.mutable_tls()->mutable_reload_interval(); });
  if (Given("max_payload_bytes"))
    c.mutable_limits()->set_max_payload_bytes(absl::GetFlag(FLAGS_max_payload_bytes));
  if (Given("max_batch_items"))
    c.mutable_limits()->set_max_batch_items(absl::GetFlag(FLAGS_max_batch_items));
  if (Given("max_message_bytes"))
    c.mutable_limits()->set_max_message_bytes(absl::GetFlag(FLAGS_max_message_bytes));
  if (Given("max_concurrent_streams"))
    c.mutable_limits()->set_max_concurrent_streams(absl::GetFlag(FLAGS_max_concurrent_streams));
  if (Given("max_revocations"))
    c.mutable_limits()->set_max_revocations(absl::GetFlag(FLAGS_max_revocations));
  GivenEtcdFlags(&c);
  c.set_insecure(absl::GetFlag(FLAGS_insecure));
  c.set_allow_unauthenticated(absl::GetFlag(FLAGS_allow_unauthenticated));
  cl.dev_kek = absl::GetFlag(FLAGS_dev_kek);
  cl.accept_rollback = absl::GetFlag(FLAGS_accept_rollback);
  cl.log_calls = absl::GetFlag(FLAGS_log_calls);
  cl.no_default_keyring = Given("default_keyring") && absl::GetFlag(FLAGS_default_keyring).empty();
  return cl;
}

// Flags and config file, resolved and checked.
absl::StatusOr<app::Settings> LoadSettings() {
  v1::ServerConfig file;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    std::optional<absl::Duration> ttl_override;
    if (Given("max_ttl")) ttl_override = absl::GetFlag(FLAGS_max_ttl);
    absl::StatusOr<v1::ServerConfig> cfg =
        config::LoadConfigFile(path, ttl_override, kDefaults.limits.max_ttl);
    if (!cfg.ok()) return cfg.status();
    file = *std::move(cfg);
  }
  return app::ResolveSettings(file, GivenFlags());
}

// The engine and, on the etcd store, the replica that keeps it in step (destroyed first).
struct Backend {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<engine::Replica> replica;
};

engine::EngineOptions EngineOptionsFor(const app::Settings& s, app::Observability* observability) {
  engine::EngineOptions options;
  options.limits = s.limits;
  options.default_keyring = s.default_keyring;
  options.audit_log = observability->audit_log();
  options.observer = observability->observer();
  options.admin_wait = s.admin_deadline;
  options.accept_rollback.insert(s.accept_rollback.begin(), s.accept_rollback.end());
  for (const std::string& name : s.accept_rollback) {
    Log("WARNING", absl::StrCat("--accept_rollback: keyring ", name,
                                " may load below its high-water mark (restoring a backup)"));
  }
  return options;
}

// The engine over the file store in data_dir (loaded now: any problem refuses the start).
absl::StatusOr<Backend> OpenFileEngine(const app::Settings& s,
                                       std::unique_ptr<store::Sealer> sealer,
                                       app::Observability* observability) {
  absl::StatusOr<std::unique_ptr<store::FileStore>> file_store = store::FileStore::Open(s.data_dir);
  if (!file_store.ok()) {
    return absl::Status(file_store.status().code(),
                        absl::StrCat("cannot open store: ", file_store.status().message()));
  }
  store::FileStore* files = file_store->get();
  Log("INFO", absl::StrCat("KEK fingerprint ", sealer->fingerprint(), "; data dir ", s.data_dir));
  absl::StatusOr<std::unique_ptr<engine::Engine>> engine =
      engine::Engine::New(*std::move(file_store), std::move(sealer), &keyring::Clock::Real(),
                          EngineOptionsFor(s, observability));
  if (!engine.ok()) {
    return absl::Status(engine.status().code(),
                        absl::StrCat("cannot load keyrings from ", s.data_dir, ": ",
                                     engine.status().message(), ". Nothing was modified."));
  }
  if (int n = files->RemoveTempFiles(); n > 0) {
    Log("INFO", absl::StrCat("removed ", n, " incomplete temp file(s) left by an earlier crash"));
  }
  return Backend{*std::move(engine), nullptr};
}

// A replica's engine over etcd: it loads in the background (NOT_SERVING until then).
absl::StatusOr<Backend> OpenReplicaEngine(const app::Settings& s,
                                          std::unique_ptr<store::Sealer> sealer,
                                          app::Observability* observability) {
  absl::StatusOr<store::EtcdOptions> etcd = app::EtcdOptionsFor(s.etcd);
  if (!etcd.ok()) return etcd.status();
  absl::StatusOr<std::unique_ptr<store::EtcdStore>> store = store::EtcdStore::New(*std::move(etcd));
  if (!store.ok()) return store.status();
  const std::string id = app::ReplicaId(s.etcd);
  Log("INFO", absl::StrCat("KEK fingerprint ", sealer->fingerprint(), "; etcd store at ",
                           absl::StrJoin(s.etcd.endpoints, ","), " prefix ", s.etcd.prefix,
                           "; replica ", id));
  engine::EngineOptions options = EngineOptionsFor(s, observability);
  options.replica_id = id;
  absl::StatusOr<std::unique_ptr<engine::Engine>> engine = engine::Engine::NewReplica(
      *std::move(store), std::move(sealer), &keyring::Clock::Real(), std::move(options));
  if (!engine.ok()) return engine.status();
  engine::ReplicaOptions r;
  r.replica_id = id;
  r.presence_ttl = s.etcd.presence_ttl;
  r.resync_interval = s.etcd.resync_interval;
  r.log = [](absl::string_view level, absl::string_view message) { Log(level, message); };
  absl::StatusOr<std::unique_ptr<engine::Replica>> replica =
      engine::Replica::Start(engine->get(), std::move(r));
  if (!replica.ok()) return replica.status();
  return Backend{*std::move(engine), *std::move(replica)};
}

// Everything that can refuse the start, before anything touches the store: the KEK, the
// audit log, then the engine. `audit` and `observability` receive what the engine writes
// to (they must outlive it).
absl::StatusOr<Backend> OpenBackend(const app::Settings& s,
                                    std::unique_ptr<engine::JsonLinesAuditLog>* audit,
                                    std::unique_ptr<app::Observability>* observability) {
  absl::StatusOr<std::unique_ptr<store::Sealer>> sealer = app::OpenSealer(s);
  if (!sealer.ok()) return sealer.status();
  if (!s.audit_log.empty()) {
    absl::StatusOr<std::unique_ptr<engine::JsonLinesAuditLog>> a =
        engine::JsonLinesAuditLog::Open(s.audit_log);
    if (!a.ok()) return a.status();
    *audit = *std::move(a);
  }
  *observability = std::make_unique<app::Observability>(s, audit->get());
  if (s.store == "etcd") return OpenReplicaEngine(s, *std::move(sealer), observability->get());
  return OpenFileEngine(s, *std::move(sealer), observability->get());
}

// A replica: waits for its first full load (or a shutdown signal: false), then creates
// the default and configured keyrings as a file-store start does.
bool AwaitReplicaReady(const app::Settings& s, engine::Engine& engine, const sigset_t& signals,
                       absl::Status* failure) {
  const struct timespec poll = {0, 100 * 1000 * 1000};
  while (!engine.ready()) {
    if (absl::Status f = engine.startup_failure(); !f.ok()) {
      *failure = f;
      return true;
    }
    const int sig = sigtimedwait(&signals, nullptr, &poll);
    if (sig > 0 && sig != SIGHUP) return false;
  }
  if (absl::Status st = engine.EnsureDefaultKeyring(); !st.ok()) {
    Log("WARNING", absl::StrCat("cannot create the default keyring: ", st.message()));
  }
  *failure = app::ApplyConfiguredKeyrings(engine, s.keyrings);
  return true;
}

// Builds and starts the gRPC server; *port gets the bound port.
std::unique_ptr<grpc::Server> StartServer(const app::Settings& s,
                                          std::shared_ptr<grpc::ServerCredentials> creds,
                                          std::initializer_list<grpc::Service*> services,
                                          app::Observability* observability, int* port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(s.listen, std::move(creds), port);
  builder.SetMaxReceiveMessageSize(s.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, s.max_concurrent_streams);
  // No SO_REUSEPORT (gRPC's default on Linux): another process of the same user must not be
  // able to bind our port beside us and receive part of the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Settings keep the age within int milliseconds; the grace is clamped to them.
  if (s.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(s.max_connection_age)));
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(s.shutdown_grace),
                                           std::numeric_limits<int>::max())));
  }
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.experimental().SetInterceptorCreators(observability->Interceptors());
  return builder.BuildAndStart();
}

// The HTTP/JSON gateway on settings.http_listen (null when off), over the same calls.
absl::StatusOr<std::unique_ptr<gateway::HttpServer>> StartHttpGateway(
    const app::Settings& s, const gateway::JsonGateway* json) {
  if (s.http_listen.empty()) return nullptr;
  gateway::HttpServerOptions options;
  options.listen = s.http_listen;
  options.max_body_bytes = static_cast<size_t>(s.max_message_bytes);
  options.log = [](absl::string_view level, absl::string_view message) { Log(level, message); };
  if (!s.tls.cert_file.empty()) {  // HTTPS with the gRPC port's certificate files
    options.tls = gateway::TlsFiles{s.tls.cert_file, s.tls.key_file, s.tls.client_ca_file,
                                    s.tls.reload_interval};
    Log("INFO",
        absl::StrCat("http gateway: HTTPS on ", s.http_listen,
                     s.tls.client_ca_file.empty() ? "" : " with client certificates (mTLS)"));
  }
  return gateway::HttpServer::Start(options, json);
}

int Fail(const absl::Status& s) {
  Log("FATAL", s.message());
  return 1;
}

// gRPC's own log lines, in the server's format (so that JSON logs stay one object a line).
void GrpcLog(gpr_log_func_args* args) {
  const char* level = args->severity == GPR_LOG_SEVERITY_ERROR  ? "ERROR"
                      : args->severity == GPR_LOG_SEVERITY_INFO ? "INFO"
                                                                : "DEBUG";
  Log(level, args->message, {{"source", "grpc"}});
}

// The access policy the settings describe, after every check that can refuse the start
// on its account (plaintext or unauthenticated front doors off loopback).
absl::StatusOr<std::unique_ptr<service::AccessPolicy>> CheckAccess(const app::Settings& s) {
  absl::StatusOr<std::unique_ptr<service::AccessPolicy>> access =
      service::AccessPolicy::New(s.auth, !s.tls.client_ca_file.empty());
  if (!access.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", access.status().message()));
  }
  for (const std::string& note : (*access)->legacy_notes()) Log("WARNING", "config: " + note);
  const bool required = (*access)->authentication_required();
  if (required) {
    Log("INFO", absl::StrCat("authentication required; ", (*access)->authorization_enabled()
                                                              ? "access rules enforced"
                                                              : "no access rules"));
  }
  if (absl::Status st = app::CheckAuthenticationOffLoopback(s, required); !st.ok()) return st;
  if (absl::Status st = app::CheckHttpGatewayAddress(s, required); !st.ok()) return st;
  return access;
}

// The first stdout line is machine-readable: tests and scripts read the port from it (and
// the gateway's from the second, when it is on).
void PrintListening(const app::Settings& s, int port, const gateway::HttpServer* http,
                    int metrics_port) {
  const std::string host = s.listen.substr(0, s.listen.rfind(':'));
  std::printf("sessiontoken-server listening on %s:%d\n", host.c_str(), port);
  if (http != nullptr) {
    std::printf("http gateway listening on %s:%d\n",
                s.http_listen.substr(0, s.http_listen.rfind(':')).c_str(), http->port());
  }
  if (metrics_port != 0) {
    const std::string mhost = s.metrics_listen.substr(0, s.metrics_listen.rfind(':'));
    std::printf("sessiontoken-server metrics on http://%s:%d/metrics\n", mhost.c_str(),
                metrics_port);
  }
  std::printf("try: sessiontoken --server=%s:%d sign --payload=hello --ttl=1h\n", host.c_str(),
              port);
  std::fflush(stdout);
}

// The store_* metrics from the replica (none on the file store).
metrics::StoreHealthSource StoreHealthOf(const engine::Replica* replica) {
  if (replica == nullptr) return nullptr;
  return [replica] {
    const engine::ReplicaStatus st = replica->Status();
    metrics::StoreHealth h;
    h.loaded_revision = st.loaded_revision;
    h.staleness_seconds = st.staleness == absl::InfiniteDuration()
                              ? std::numeric_limits<double>::infinity()  // not loaded yet
                              : absl::ToDoubleSeconds(st.staleness);
    h.watch_restarts = st.watch_restarts;
    return h;
  };
}

// Both front doors' health: gRPC's health service and the gateway's /healthz.
void SetServing(grpc::Server& server, gateway::JsonGateway& json, bool serving) {
  server.GetHealthCheckService()->SetServingStatus(serving);
  json.SetServing(serving);
}

// SIGHUP: reads the KEK configuration again (flags and config file: kek_file,
// previous_kek_files) and uses it once every stored record opens with it. A KEK from the
// environment was wiped at start: it cannot be read again (restart instead).
void ReloadKeks(engine::Engine& engine) {
  absl::StatusOr<app::Settings> fresh = LoadSettings();
  absl::StatusOr<std::unique_ptr<store::Sealer>> sealer =
      fresh.ok() ? app::OpenSealer(*fresh) : fresh.status();
  absl::Status s = sealer.ok() ? absl::OkStatus() : sealer.status();
  const std::string fingerprint = sealer.ok() ? (*sealer)->fingerprint() : "";
  if (s.ok()) s = engine.ReplaceSealer(*std::move(sealer));
  if (!s.ok()) {
    Log("ERROR", absl::StrCat("SIGHUP: KEK configuration not reloaded, keeping KEK ",
                              engine.kek_fingerprint(), ": ", s.message()));
    return;
  }
  const std::vector<std::string> previous = engine.previous_kek_fingerprints();
  Log("INFO",
      absl::StrCat("SIGHUP: KEK configuration reloaded: KEK fingerprint ", fingerprint,
                   "; previous KEKs: ", previous.empty() ? "none" : absl::StrJoin(previous, ", ")));
}

// Serves (a replica first waits for its first load) with the scheduler running until
// SIGTERM/SIGINT, then drains. Returns the exit code.
int ServeUntilSignal(const app::Settings& s, Backend& backend, grpc::Server& server,
                     gateway::JsonGateway& json, gateway::HttpServer* http,
                     const sigset_t& signals) {
  if (backend.replica != nullptr) {  // NOT_SERVING until the first full load
    absl::Status failure;
    if (!AwaitReplicaReady(s, *backend.engine, signals, &failure)) {
      if (http != nullptr) http->Stop();
      server.Shutdown(absl::ToChronoTime(absl::Now()));
      return 0;
    }
    if (!failure.ok()) return Fail(failure);
    SetServing(server, json, true);
    Log("INFO", "serving");
  }
  int sig = 0;
  {
    engine::Scheduler scheduler(backend.engine.get(), s.scheduler_interval, [](int n) {
      Log("INFO", absl::StrCat("scheduler applied ", n, " transition(s)"));
    });
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) ReloadKeks(*backend.engine);
  }  // the scheduler stops before the drain
  Log("INFO", absl::StrCat("received ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ": draining (grace ",
                           absl::FormatDuration(s.shutdown_grace), ")"));
  SetServing(server, json, false);
  if (http != nullptr) http->Stop();  // waits for the HTTP requests in progress
  server.Shutdown(absl::ToChronoTime(absl::Now() + s.shutdown_grace));
  server.Wait();
  Log("INFO", "stopped");
  return 0;
}

int Run(const sigset_t& signals) {
  absl::StatusOr<app::Settings> settings = LoadSettings();
  if (!settings.ok()) return Fail(settings.status());
  const app::Settings& s = *settings;
  app::SetLogFormat(s.log_format);
  gpr_set_log_function(GrpcLog);
  store::FileStore::SetWarningLog([](absl::string_view m) { Log("WARNING", m); });
  // Every check that can refuse the start comes before anything touches the store.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = app::ServerCredentials(s);
  if (!creds.ok()) return Fail(creds.status());
  absl::StatusOr<std::unique_ptr<service::AccessPolicy>> access = CheckAccess(s);
  if (!access.ok()) return Fail(access.status());
  std::unique_ptr<engine::JsonLinesAuditLog> audit;
  std::unique_ptr<app::Observability> observability;
  absl::StatusOr<Backend> backend = OpenBackend(s, &audit, &observability);
  if (!backend.ok()) return Fail(backend.status());
  engine::Engine* engine = backend->engine.get();
  if (backend->replica == nullptr) {  // a replica applies them once loaded
    if (absl::Status st = app::ApplyConfiguredKeyrings(*engine, s.keyrings); !st.ok())
      return Fail(st);
  }
  service::Authorizer authorizer(*std::move(access), audit.get());
  service::SessionTokensService tokens(engine, s.max_batch_items, &authorizer);
  observability->Observe(&tokens);
  service::KeyAdminService admin(engine, &authorizer, observability->usage());
  admin.set_replica(backend->replica.get());
  absl::StatusOr<int> metrics_port =
      observability->StartListener(engine, StoreHealthOf(backend->replica.get()));
  if (!metrics_port.ok()) return Fail(metrics_port.status());
  // The listener reads the engine: it stops first, whatever way Run returns.
  absl::Cleanup stop_metrics = [&observability] { observability->StopListener(); };
  int port = 0;
  std::unique_ptr<grpc::Server> server =
      StartServer(s, *creds, {&tokens, &admin}, observability.get(), &port);
  if (server == nullptr || port == 0)
    return Fail(absl::UnavailableError(absl::StrCat("cannot listen on ", s.listen)));
  gateway::JsonGateway json(&tokens, &authorizer);
  absl::StatusOr<std::unique_ptr<gateway::HttpServer>> http = StartHttpGateway(s, &json);
  if (!http.ok()) return Fail(http.status());
  SetServing(*server, json, backend->replica == nullptr);
  PrintListening(s, port, http->get(), *metrics_port);
  return ServeUntilSignal(s, *backend, *server, json, http->get(), signals);
}

}  // namespace
}  // namespace sessiontoken

int main(int argc, char** argv) {
  // Key material must not end up in core dumps (and other users' ptrace is refused).
  struct rlimit no_core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  absl::SetProgramUsageMessage(
      "sessiontoken-server: holds the secret keys of web session cookies.\n"
      "  sessiontoken-server --listen=127.0.0.1:50051 --data_dir=data --kek_file=kek.hex");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_print_metric_names)) {
    for (const std::string& name : sessiontoken::metrics::ExportedFamilyNames()) {
      std::printf("%s\n", name.c_str());
    }
    return 0;
  }
  // Debian's Abseil checks every mutex acquisition for lock-order cycles (gRPC's included):
  // ~16% of a call's instructions (docs/performance.md), and a false positive would abort
  // the server. Our own locks nest in one fixed order (Engine: busy_mu_ is released before
  // write_mu_ is taken); the unit tests keep the detection on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Block the shutdown signals in every thread (gRPC's included); Run waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // reloads the KEK configuration
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return sessiontoken::Run(signals);
}
