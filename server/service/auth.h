// Authorizer: the gRPC side of access control. Identifies the caller of a call (bearer token
// in the `authorization` metadata: "token:<identity>", else the mTLS client certificate's SAN
// URI: "uri:<uri>", else its SAN DNS name: "dns:<name>") and checks roles against the
// AccessPolicy; denials are audit-logged.
#ifndef SESSIONTOKEN_SERVER_SERVICE_AUTH_H_
#define SESSIONTOKEN_SERVER_SERVICE_AUTH_H_

#include <grpcpp/server_context.h>

#include <memory>
#include <optional>
#include <string>

#include "server/engine/audit.h"
#include "server/keyring/clock.h"
#include "server/service/access_policy.h"

namespace sessiontoken::service {

class Authorizer {
 public:
  // `policy` may be null (no access control); `audit` may be null.
  Authorizer(std::unique_ptr<AccessPolicy> policy, engine::AuditLog* audit,
             const keyring::Clock* clock = &keyring::Clock::Real())
      : policy_(std::move(policy)), audit_(audit), clock_(clock) {}

  bool enabled() const { return policy_ != nullptr && policy_->authentication_required(); }

  // Who is calling (cheap when access control is off: only the peer address).
  Caller Identify(const grpc::ServerContextBase& ctx) const;
  // Who is calling through the HTTP gateway: `authorization` is the value of the
  // Authorization header (nullopt when absent), read exactly as the gRPC `authorization`
  // metadata and, as there, taking precedence; else `certificate_identity`, the
  // "uri:…"/"dns:…" identity of a verified client certificate (empty: none).
  Caller IdentifyHttp(std::optional<absl::string_view> authorization,
                      std::string certificate_identity, std::string peer) const;

  // OK, UNAUTHENTICATED (no or bad credentials) or PERMISSION_DENIED (audited, unless
  // `rpc` is empty: a probe such as filtering a listing).
  grpc::Status Check(const Caller& caller, Role role, absl::string_view keyring,
                     absl::string_view rpc) const;

 private:
  // Fills c->identity or c->bad_credentials from an `authorization` value.
  void ReadAuthorization(absl::string_view value, Caller* c) const;

  std::unique_ptr<AccessPolicy> policy_;
  engine::AuditLog* audit_;
  const keyring::Clock* clock_;
};

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_AUTH_H_
