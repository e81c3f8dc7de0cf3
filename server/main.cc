// sessiontoken-server: flags, wiring, signals, health and graceful shutdown.
#include <errno.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/config/config.h"
#include "server/engine/audit.h"
#include "server/engine/engine.h"
#include "server/service/access_policy.h"
#include "server/service/admin_service.h"
#include "server/service/auth.h"
#include "server/service/tokens_service.h"
#include "server/store/file_store.h"
#include "server/store/sealer.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to listen on (host:port; port 0 picks a free port, printed at start-up)");
ABSL_FLAG(std::string, data_dir, "data", "Directory of the file keyring store (created 0700)");
ABSL_FLAG(std::string, kek_file, "",
          "File holding the key-encryption key (64 hex chars or base64 of 32 bytes)");
ABSL_FLAG(std::string, kek_env, "SESSIONTOKEN_KEK",
          "Environment variable holding the KEK, used when --kek_file is not set");
ABSL_FLAG(bool, dev_kek, false,
          "Development only: generate/use an unprotected KEK in <data_dir>/dev-kek when no KEK "
          "is configured");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGTERM/SIGINT: how long in-flight calls may take before they are cancelled");
ABSL_FLAG(int64_t, max_payload_bytes, 2048, "Largest payload Sign accepts (at most 3000)");
ABSL_FLAG(absl::Duration, max_ttl, absl::Hours(24 * 31), "Longest token TTL Sign accepts");
ABSL_FLAG(absl::Duration, max_clock_skew, absl::Seconds(30),
          "How far in the future a token's issued-at may be before NOT_YET_VALID");
ABSL_FLAG(std::string, default_keyring, "default", "Keyring created on first start (empty: none)");
ABSL_FLAG(std::string, config, "",
          "Server config file in protobuf text format (proto/sessiontoken/v1/config.proto); "
          "flags given on the command line override it");
ABSL_FLAG(std::string, audit_log, "",
          "Append one JSON line per admin operation to this file ('-' = stdout; empty = off)");
ABSL_FLAG(absl::Duration, scheduler_interval, absl::Seconds(1),
          "How often the scheduler applies due policy transitions (0 = never)");
ABSL_FLAG(int32_t, max_batch_items, 1000, "Most items in one BatchSign/BatchVerify request");
ABSL_FLAG(int32_t, max_message_bytes, 1 << 20, "Largest request message the server accepts");
ABSL_FLAG(int32_t, max_concurrent_streams, 256, "Concurrent calls per client connection");
ABSL_FLAG(std::string, tls_cert, "", "Server certificate chain (PEM); enables TLS");
ABSL_FLAG(std::string, tls_key, "", "Private key of --tls_cert (PEM)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA bundle (PEM): require and verify client certificates (mTLS)");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(10),
          "How often certificate files are checked for changes (reloaded without restart)");
ABSL_FLAG(absl::Duration, admin_deadline, absl::Seconds(10),
          "Server-side default deadline of admin changes: how long one may wait for others "
          "before failing with DEADLINE_EXCEEDED (nothing changed)");
ABSL_FLAG(bool, insecure, false,
          "Allow plaintext (no TLS) on a non-loopback --listen address. Never in production");

namespace sessiontoken {
namespace {

void Log(absl::string_view level, absl::string_view msg) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   level, " ", msg, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

v1::ServerConfig g_config;

// True when the flag was set to something other than its default (this Abseil version
// does not expose "specified on the command line"): then it overrides the config file.
bool OnCommandLine(absl::string_view flag) {
  const absl::CommandLineFlag* f = absl::FindCommandLineFlag(flag);
  return f != nullptr && f->CurrentValue() != f->DefaultValue();
}
// A string setting: the flag when given on the command line, else the config's when set,
// else the flag's default.
std::string Setting(const absl::Flag<std::string>& flag, absl::string_view name,
                    const std::string& from_config) {
  if (OnCommandLine(name) || from_config.empty()) return absl::GetFlag(flag);
  return from_config;
}
absl::Duration Setting(const absl::Flag<absl::Duration>& flag, absl::string_view name,
                       const google::protobuf::Duration& from_config, bool has) {
  if (OnCommandLine(name) || !has) return absl::GetFlag(flag);
  return absl::Seconds(from_config.seconds()) + absl::Nanoseconds(from_config.nanos());
}

absl::StatusOr<crypto::SecretBytes> ResolveKek(const std::string& data_dir) {
  const std::string kek_file = Setting(FLAGS_kek_file, "kek_file", g_config.kek_file());
  if (!kek_file.empty()) return store::LoadKekFile(kek_file);
  const std::string env_name = Setting(FLAGS_kek_env, "kek_env", g_config.kek_env());
  if (!env_name.empty()) {
    if (char* v = std::getenv(env_name.c_str()); v != nullptr && *v != '\0') {
      absl::StatusOr<crypto::SecretBytes> kek = store::ParseKek(v);
      // Do not leave the KEK readable in /proc/<pid>/environ for the process's lifetime.
      crypto::SecureWipe(v, std::strlen(v));
      ::unsetenv(env_name.c_str());
      if (!kek.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("environment variable ", env_name, ": ", kek.status().message()));
      }
      return kek;
    }
  }
  if (absl::GetFlag(FLAGS_dev_kek)) {
    if (::mkdir(data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::FailedPreconditionError(absl::StrCat("cannot create ", data_dir));
    }
    const std::string path = data_dir + "/dev-kek";
    bool created = false;
    absl::StatusOr<crypto::SecretBytes> kek = store::LoadOrCreateDevKek(path, &created);
    if (kek.ok()) {
      Log("WARNING", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
      Log("WARNING", absl::StrCat("DEVELOPMENT KEK IN USE (", created ? "generated " : "", path,
                                  "). Keyrings are only as safe as this file. Never use "
                                  "--dev_kek in production: pass --kek_file or set ",
                                  env_name, "."));
      Log("WARNING", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    }
    return kek;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no key-encryption key configured: pass --kek_file=PATH, set ", env_name,
                   ", or use --dev_kek for local development"));
}

bool IsLoopback(absl::string_view listen) {
  absl::string_view host = listen.substr(0, listen.rfind(':'));
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

int32_t IntSetting(const absl::Flag<int32_t>& flag, absl::string_view name, int32_t from_config) {
  return OnCommandLine(name) || from_config == 0 ? absl::GetFlag(flag) : from_config;
}

// TLS credentials from files, re-read every `reload` (FileWatcherCertificateProvider), or
// plaintext. Refuses plaintext off loopback unless --insecure.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const std::string& listen) {
  const v1::TlsConfig& tls = g_config.tls();
  const std::string cert = Setting(FLAGS_tls_cert, "tls_cert", tls.cert_file());
  const std::string key = Setting(FLAGS_tls_key, "tls_key", tls.key_file());
  const std::string ca = Setting(FLAGS_tls_client_ca, "tls_client_ca", tls.client_ca_file());
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("tls_cert and tls_key must be given together");
  }
  if (cert.empty()) {
    if (!ca.empty()) return absl::InvalidArgumentError("tls_client_ca needs tls_cert and tls_key");
    const bool insecure = absl::GetFlag(FLAGS_insecure) || g_config.insecure();
    if (!IsLoopback(listen)) {
      if (!insecure) {
        return absl::FailedPreconditionError(
            absl::StrCat("refusing to listen on ", listen,
                         " without TLS: pass --tls_cert/--tls_key, or "
                         "--insecure to accept plaintext on a non-loopback address"));
      }
      Log("WARNING", absl::StrCat("!!! --insecure: PLAINTEXT gRPC on ", listen,
                                  ". Tokens, payloads and admin calls travel unencrypted !!!"));
    }
    return grpc::InsecureServerCredentials();
  }
  for (const std::string& f : {cert, key, ca}) {
    if (!f.empty() && ::access(f.c_str(), R_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read TLS file ", f));
    }
  }
  const absl::Duration reload = Setting(FLAGS_tls_reload_interval, "tls_reload_interval",
                                        tls.reload_interval(), tls.has_reload_interval());
  const unsigned int reload_s =
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(reload)));
  auto provider = ca.empty() ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                                   key, cert, reload_s)
                             : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                                   key, cert, ca, reload_s);
  grpc::experimental::TlsServerCredentialsOptions opts(provider);
  opts.watch_identity_key_cert_pairs();
  if (!ca.empty()) {
    opts.watch_root_certs();
    opts.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    opts.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  Log("INFO", absl::StrCat("TLS on ", listen, ca.empty() ? "" : " with client certificates (mTLS)",
                           "; certificates reloaded every ", reload_s, "s"));
  return grpc::experimental::TlsServerCredentials(opts);
}

int Run() {
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    std::optional<absl::Duration> ttl_override;
    if (OnCommandLine("max_ttl")) ttl_override = absl::GetFlag(FLAGS_max_ttl);
    absl::StatusOr<v1::ServerConfig> cfg =
        config::LoadConfigFile(path, ttl_override, absl::GetFlag(FLAGS_max_ttl));
    if (!cfg.ok()) {
      Log("FATAL", std::string(cfg.status().message()));
      return 1;
    }
    g_config = *std::move(cfg);
  }
  const v1::Limits& limits = g_config.limits();
  const absl::Duration max_ttl =
      Setting(FLAGS_max_ttl, "max_ttl", limits.max_ttl(), limits.has_max_ttl());
  const std::string data_dir = Setting(FLAGS_data_dir, "data_dir", g_config.data_dir());
  // Block the shutdown signals in every thread (gRPC's included); main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Every check that can refuse the start comes before anything touches the disk.
  const absl::Duration skew = Setting(FLAGS_max_clock_skew, "max_clock_skew",
                                      limits.max_clock_skew(), limits.has_max_clock_skew());
  if (skew < absl::ZeroDuration() || skew > absl::Hours(24)) {
    Log("FATAL", "max_clock_skew: must be between 0 and 24h");
    return 1;
  }
  if (max_ttl < absl::Seconds(1) || max_ttl > absl::Hours(24 * 366 * 10)) {
    Log("FATAL", "max_ttl: must be between 1s and 10 years");
    return 1;
  }
  const bool mtls =
      !Setting(FLAGS_tls_client_ca, "tls_client_ca", g_config.tls().client_ca_file()).empty();
  absl::StatusOr<std::unique_ptr<service::AccessPolicy>> access =
      service::AccessPolicy::New(g_config.auth(), mtls);
  if (!access.ok()) {
    Log("FATAL", absl::StrCat("config: ", access.status().message()));
    return 1;
  }
  if ((*access)->authentication_required()) {
    Log("INFO", absl::StrCat("authentication required; ", (*access)->authorization_enabled()
                                                              ? "access rules enforced"
                                                              : "no access rules"));
  }
  // Transport and KEK next: a start refused for either leaves no trace on disk.
  const std::string listen = Setting(FLAGS_listen, "listen", g_config.listen());
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = ServerCredentials(listen);
  if (!creds.ok()) {
    Log("FATAL", std::string(creds.status().message()));
    return 1;
  }
  absl::StatusOr<crypto::SecretBytes> kek = ResolveKek(data_dir);
  if (!kek.ok()) {
    Log("FATAL", std::string(kek.status().message()));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<store::FileStore>> file_store = store::FileStore::Open(data_dir);
  if (!file_store.ok()) {
    Log("FATAL", absl::StrCat("cannot open store: ", file_store.status().message()));
    return 1;
  }
  store::FileStore* file_store_ptr = file_store->get();
  absl::StatusOr<std::unique_ptr<store::Sealer>> sealer = store::Sealer::New(*std::move(kek));
  if (!sealer.ok()) {
    Log("FATAL", std::string(sealer.status().message()));
    return 1;
  }
  const std::string kek_fp = (*sealer)->fingerprint();
  const absl::Duration grace = Setting(FLAGS_shutdown_grace, "shutdown_grace",
                                       g_config.shutdown_grace(), g_config.has_shutdown_grace());

  std::unique_ptr<engine::JsonLinesAuditLog> audit;
  if (const std::string path = Setting(FLAGS_audit_log, "audit_log", g_config.audit_log());
      !path.empty()) {
    absl::StatusOr<std::unique_ptr<engine::JsonLinesAuditLog>> a =
        engine::JsonLinesAuditLog::Open(path);
    if (!a.ok()) {
      Log("FATAL", std::string(a.status().message()));
      return 1;
    }
    audit = *std::move(a);
  }

  engine::EngineOptions options;
  options.max_payload_bytes =
      static_cast<size_t>(OnCommandLine("max_payload_bytes") || limits.max_payload_bytes() == 0
                              ? absl::GetFlag(FLAGS_max_payload_bytes)
                              : limits.max_payload_bytes());
  options.max_ttl = max_ttl;
  options.verify.max_clock_skew = skew;
  options.default_keyring =
      Setting(FLAGS_default_keyring, "default_keyring", g_config.default_keyring());
  options.audit_log = audit.get();
  options.admin_wait = absl::GetFlag(FLAGS_admin_deadline);
  const int max_batch =
      IntSetting(FLAGS_max_batch_items, "max_batch_items", limits.max_batch_items());
  absl::StatusOr<std::unique_ptr<engine::Engine>> engine = engine::Engine::New(
      *std::move(file_store), *std::move(sealer), &keyring::Clock::Real(), options);
  if (!engine.ok()) {
    Log("FATAL", absl::StrCat("cannot load keyrings from ", data_dir, ": ",
                              engine.status().message(), ". Nothing was modified."));
    return 1;
  }
  if (int n = file_store_ptr->RemoveTempFiles(); n > 0) {
    Log("INFO", absl::StrCat("removed ", n, " incomplete temp file(s) left by an earlier crash"));
  }
  // Keyrings the config file lists: create when missing, apply the configured policy.
  for (const v1::KeyringConfig& k : g_config.keyrings()) {
    absl::StatusOr<std::shared_ptr<const keyring::Keyring>> existing = (*engine)->Get(k.name());
    absl::Status s;
    if (!existing.ok()) {
      s = (*engine)->CreateKeyring("config", k.name(), k.policy(), k.algorithm()).status();
    } else if ((*existing)->policy().SerializeAsString() != k.policy().SerializeAsString()) {
      s = (*engine)->SetPolicy("config", k.name(), k.policy()).status();
    }
    if (!s.ok()) {
      Log("FATAL", absl::StrCat("config keyring ", k.name(), ": ", s.message()));
      return 1;
    }
  }

  service::Authorizer authorizer(*std::move(access), audit.get());
  service::SessionTokensService tokens(engine->get(), max_batch, &authorizer);
  service::KeyAdminService admin(engine->get(), &authorizer);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, *creds, &port);
  builder.SetMaxReceiveMessageSize(
      IntSetting(FLAGS_max_message_bytes, "max_message_bytes", limits.max_message_bytes()));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             IntSetting(FLAGS_max_concurrent_streams, "max_concurrent_streams",
                                        limits.max_concurrent_streams()));
  builder.RegisterService(&tokens);
  builder.RegisterService(&admin);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log("FATAL", absl::StrCat("cannot listen on ", listen));
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  std::string host = listen.substr(0, listen.rfind(':'));
  Log("INFO", absl::StrCat("KEK fingerprint ", kek_fp, "; data dir ", data_dir));
  // The first stdout line is machine-readable: tests and scripts read the port from it.
  std::printf("sessiontoken-server listening on %s:%d\n", host.c_str(), port);
  std::printf("try: sessiontoken --server=%s:%d sign --payload=hello --ttl=1h\n", host.c_str(),
              port);
  std::fflush(stdout);

  // The scheduler: applies due rotations/promotions/disables/destroys on time.
  const absl::Duration tick =
      Setting(FLAGS_scheduler_interval, "scheduler_interval", g_config.scheduler_interval(),
              g_config.has_scheduler_interval());
  absl::Notification stop_scheduler;
  std::thread scheduler([&] {
    if (tick <= absl::ZeroDuration()) return;
    while (!stop_scheduler.WaitForNotificationWithTimeout(tick)) {
      if (int n = (*engine)->Tick(); n > 0) {
        Log("INFO", absl::StrCat("scheduler applied ", n, " transition(s)"));
      }
    }
  });

  int sig = 0;
  sigwait(&signals, &sig);
  stop_scheduler.Notify();
  scheduler.join();
  Log("INFO", absl::StrCat("received ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ": draining (grace ",
                           absl::FormatDuration(grace), ")"));
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server->Wait();
  Log("INFO", "stopped");
  return 0;
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
  // Debian's Abseil checks every mutex acquisition for lock-order cycles (gRPC's included):
  // ~16% of a call's instructions (docs/performance.md), and a false positive would abort
  // the server. Our own locks nest in one fixed order (Engine: busy_mu_ is released before
  // write_mu_ is taken); the unit tests keep the detection on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return sessiontoken::Run();
}
