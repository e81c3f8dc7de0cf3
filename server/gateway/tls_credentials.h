// TlsCredentials: the HTTP gateway's TLS certificate, key and client CA as GnuTLS
// credentials (the gateway's HTTP library, libmicrohttpd, speaks TLS through GnuTLS), re-read
// when the files change, and the caller's identity from a verified client certificate
// ("uri:<SAN URI>", else "dns:<SAN DNS name>", as server/service/auth.h reads it on the gRPC
// port). GnuTLS only: no OpenSSL or BoringSSL header may be included next to this one.
#ifndef SESSIONTOKEN_SERVER_GATEWAY_TLS_CREDENTIALS_H_
#define SESSIONTOKEN_SERVER_GATEWAY_TLS_CREDENTIALS_H_

#include <gnutls/gnutls.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sessiontoken::gateway {

// The files, as ServerConfig.tls names them for the gRPC port.
struct TlsFiles {
  std::string cert_file;       // PEM certificate chain
  std::string key_file;        // PEM private key of cert_file
  std::string client_ca_file;  // PEM CA bundle: require and verify client certificates; "" = off
  absl::Duration reload_interval = absl::Minutes(1);  // how often the files are re-read
};

class TlsCredentials {
 public:
  // Where reloads are reported: (level, message), e.g. app::Log.
  using Logger = std::function<void(absl::string_view level, absl::string_view message)>;

  // Reads and checks the files (key matches certificate, CA bundle parses):
  // FailedPrecondition when one cannot be read, InvalidArgument saying which is wrong.
  static absl::StatusOr<std::unique_ptr<TlsCredentials>> Load(const TlsFiles& files, Logger log);

  bool mtls() const { return !files_.client_ca_file.empty(); }

  // One loaded set of credentials. Sessions point at it (GnuTLS keeps no reference count),
  // so each session holds one of these until the connection is closed.
  class Loaded;

  // Prepares a new server session before its handshake: the current credentials (the files
  // are re-read when reload_interval has passed since the last look and their contents
  // changed; a set that does not load is logged and the last good one kept), and with mTLS
  // a client certificate is required and verified against the CA bundle during the
  // handshake. Returns what the session must keep alive.
  std::shared_ptr<const Loaded> Attach(gnutls_session_t session);

  // The identity of the session's client certificate, verified again against the session's
  // CA bundle: "uri:<first SAN URI>", else "dns:<first SAN DNS name>", else "" (no
  // certificate, not verified, or no such SAN).
  static std::string PeerIdentity(gnutls_session_t session);

 private:
  TlsCredentials(TlsFiles files, Logger log, std::shared_ptr<const Loaded> loaded,
                 std::string digest)
      : files_(std::move(files)),
        log_(std::move(log)),
        current_(std::move(loaded)),
        digest_(std::move(digest)) {}
  void ReloadIfDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TlsFiles files_;
  const Logger log_;
  absl::Mutex mu_;
  std::shared_ptr<const Loaded> current_ ABSL_GUARDED_BY(mu_);
  std::string digest_ ABSL_GUARDED_BY(mu_);  // SHA-256 of the files' contents when loaded
  absl::Time last_look_ ABSL_GUARDED_BY(mu_) = absl::Now();
};

}  // namespace sessiontoken::gateway

#endif  // SESSIONTOKEN_SERVER_GATEWAY_TLS_CREDENTIALS_H_
