// Start-up credentials: the key-encryption key (file, environment variable, or the
// development KEK) and the gRPC server credentials (TLS/mTLS with certificate reloading, or
// plaintext, which is refused off loopback unless explicitly allowed).
#ifndef SESSIONTOKEN_SERVER_APP_CREDENTIALS_H_
#define SESSIONTOKEN_SERVER_APP_CREDENTIALS_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/app/settings.h"
#include "server/crypto/secret_bytes.h"
#include "server/store/sealer.h"

namespace sessiontoken::app {

// The KEK: settings.kek_file when set, else the environment variable settings.kek_env
// (wiped and unset once read), else the development KEK in <data_dir>/dev-kek when
// settings.dev_kek (logged loudly). FailedPrecondition when none is configured.
absl::StatusOr<crypto::SecretBytes> ResolveKek(const Settings& settings);

// The sealer of the configured KEKs: ResolveKek as current, settings.previous_kek_files as
// previous (each read as --kek_file is: private file, hex or base64). Logs the fingerprints.
absl::StatusOr<std::unique_ptr<store::Sealer>> OpenSealer(const Settings& settings);

// True when `listen` (host:port) names a loopback address.
bool IsLoopback(absl::string_view listen);

// Refuses (FailedPrecondition, saying what to configure) to serve a non-loopback address
// when `authentication_required` is false (no API tokens, rules or mTLS), unless
// settings.allow_unauthenticated (then logs a loud warning). OK on loopback.
absl::Status CheckAuthenticationOffLoopback(const Settings& settings, bool authentication_required);

// The HTTP/JSON gateway (settings.http_listen; HTTPS when settings.tls has a certificate,
// else plaintext): off loopback, plaintext is refused unless settings.insecure (TLS
// terminated in front of it, logged loudly), and both are refused when
// `authentication_required` is false unless settings.allow_unauthenticated. OK when the
// gateway is off or on loopback.
absl::Status CheckHttpGatewayAddress(const Settings& settings, bool authentication_required);

// TLS credentials from settings.tls (files re-read every reload_interval), or plaintext.
// Refuses plaintext off loopback unless settings.insecure. Checks the files are readable.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const Settings& settings);

}  // namespace sessiontoken::app

#endif  // SESSIONTOKEN_SERVER_APP_CREDENTIALS_H_
