#include "server/app/credentials.h"

#include <errno.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/app/log.h"
#include "server/store/sealer.h"

namespace sessiontoken::app {
namespace {

absl::StatusOr<crypto::SecretBytes> DevKek(const Settings& s) {
  if (::mkdir(s.data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create ", s.data_dir));
  }
  const std::string path = s.data_dir + "/dev-kek";
  bool created = false;
  absl::StatusOr<crypto::SecretBytes> kek = store::LoadOrCreateDevKek(path, &created);
  if (!kek.ok()) return kek;
  const std::string banner(72, '!');
  Log("WARNING", banner);
  Log("WARNING", absl::StrCat("DEVELOPMENT KEK IN USE (", created ? "generated " : "", path,
                              "). Keyrings are only as safe as this file. Never use "
                              "--dev_kek in production: pass --kek_file or set ",
                              s.kek_env, "."));
  Log("WARNING", banner);
  return kek;
}

}  // namespace

absl::StatusOr<crypto::SecretBytes> ResolveKek(const Settings& s) {
  // Taken (wiped, unset) even when the file is used: never left in /proc/<pid>/environ.
  absl::StatusOr<std::optional<crypto::SecretBytes>> from_env = store::TakeKekFromEnv(s.kek_env);
  if (!s.kek_file.empty()) return store::LoadKekFile(s.kek_file);
  if (!from_env.ok()) return from_env.status();
  if (from_env->has_value()) return std::move(**from_env);
  if (s.dev_kek) return DevKek(s);
  return absl::FailedPreconditionError(
      absl::StrCat("no key-encryption key configured: pass --kek_file=PATH, set ", s.kek_env,
                   ", or use --dev_kek for local development"));
}

absl::StatusOr<std::unique_ptr<store::Sealer>> OpenSealer(const Settings& s) {
  absl::StatusOr<crypto::SecretBytes> kek = ResolveKek(s);
  if (!kek.ok()) return kek.status();
  std::vector<crypto::SecretBytes> previous;
  for (const std::string& path : s.previous_kek_files) {
    absl::StatusOr<crypto::SecretBytes> k = store::LoadKekFile(path);
    if (!k.ok()) {
      return absl::Status(k.status().code(),
                          absl::StrCat("previous_kek_files: ", k.status().message()));
    }
    previous.push_back(*std::move(k));
  }
  absl::StatusOr<std::unique_ptr<store::Sealer>> sealer =
      store::Sealer::New(*std::move(kek), std::move(previous));
  if (!sealer.ok()) return sealer.status();
  if (!s.previous_kek_files.empty()) {
    Log("INFO", absl::StrCat("previous KEK fingerprints ",
                             absl::StrJoin((*sealer)->previous_fingerprints(), ", "),
                             ": keyrings sealed with them open; every write seals with KEK ",
                             (*sealer)->fingerprint()));
  }
  return sealer;
}

bool IsLoopback(absl::string_view listen) {
  absl::string_view host = listen.substr(0, listen.rfind(':'));
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status CheckAuthenticationOffLoopback(const Settings& s, bool authentication_required) {
  if (authentication_required || IsLoopback(s.listen)) return absl::OkStatus();
  if (!s.allow_unauthenticated) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", s.listen,
        " without authentication: anyone who reaches it could sign sessions and rotate or "
        "import keys. Configure auth.api_tokens and auth.rules in --config, or client "
        "certificates (--tls_client_ca); or pass --allow_unauthenticated if your own "
        "authenticating proxy is the only way in (docs/security.md)"));
  }
  Log("WARNING", absl::StrCat("!!! --allow_unauthenticated: NO AUTHENTICATION on ", s.listen,
                              ". Every caller that reaches this address may sign, verify, "
                              "rotate, import and destroy keys !!!"));
  return absl::OkStatus();
}

absl::Status CheckHttpGatewayAddress(const Settings& s, bool authentication_required) {
  if (s.http_listen.empty() || IsLoopback(s.http_listen)) return absl::OkStatus();
  const bool tls = !s.tls.cert_file.empty();
  if (!tls && !s.insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve the HTTP gateway on ", s.http_listen,
        ": without --tls_cert/--tls_key it speaks plaintext HTTP. Configure TLS, listen on "
        "loopback, or terminate TLS in a proxy in front of it and pass --insecure "
        "(docs/http-gateway.md)"));
  }
  if (!authentication_required && !s.allow_unauthenticated) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve the HTTP gateway on ", s.http_listen,
        " without authentication: configure auth.api_tokens and auth.rules in --config, or "
        "pass --allow_unauthenticated if your own authenticating proxy is the only way in"));
  }
  if (tls) return absl::OkStatus();
  Log("WARNING", absl::StrCat("--insecure: the HTTP gateway serves plaintext on ", s.http_listen,
                              "; bearer tokens cross the network in the clear unless a "
                              "TLS-terminating proxy is the only way in"));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const Settings& s) {
  const TlsSettings& tls = s.tls;
  if (tls.cert_file.empty()) {
    if (!IsLoopback(s.listen)) {
      if (!s.insecure) {
        return absl::FailedPreconditionError(
            absl::StrCat("refusing to listen on ", s.listen,
                         " without TLS: pass --tls_cert/--tls_key, or "
                         "--insecure to accept plaintext on a non-loopback address"));
      }
      Log("WARNING", absl::StrCat("!!! --insecure: PLAINTEXT gRPC on ", s.listen,
                                  ". Tokens, payloads and admin calls travel unencrypted !!!"));
    }
    return grpc::InsecureServerCredentials();
  }
  for (const std::string& f : {tls.cert_file, tls.key_file, tls.client_ca_file}) {
    if (!f.empty() && ::access(f.c_str(), R_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read TLS file ", f));
    }
  }
  const unsigned int reload_s =
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(tls.reload_interval)));
  const bool mtls = !tls.client_ca_file.empty();
  auto provider = mtls ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                             tls.key_file, tls.cert_file, tls.client_ca_file, reload_s)
                       : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                             tls.key_file, tls.cert_file, reload_s);
  grpc::experimental::TlsServerCredentialsOptions opts(provider);
  opts.watch_identity_key_cert_pairs();
  if (mtls) opts.watch_root_certs();
  opts.set_cert_request_type(mtls ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                  : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  Log("INFO", absl::StrCat("TLS on ", s.listen, mtls ? " with client certificates (mTLS)" : "",
                           "; certificates reloaded every ", reload_s, "s"));
  return grpc::experimental::TlsServerCredentials(opts);
}

}  // namespace sessiontoken::app
