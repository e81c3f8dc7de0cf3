// AccessPolicy: who may call what. Maps bearer tokens (by SHA-256) to identities and decides
// whether an identity holds a role (sign / verify / admin) on a keyring. Pure logic, no gRPC.
#ifndef SESSIONTOKEN_SERVER_SERVICE_ACCESS_POLICY_H_
#define SESSIONTOKEN_SERVER_SERVICE_ACCESS_POLICY_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sessiontoken/v1/config.pb.h"

namespace sessiontoken::service {

using Role = v1::AuthConfig::Role;

// Who is calling: the authenticated identity, or none.
struct Caller {
  std::string identity;          // empty when unauthenticated
  std::string peer;              // transport address, for the audit log
  bool bad_credentials = false;  // presented a bearer token that matches no API token
  bool authenticated() const { return !identity.empty(); }
  // What the audit log records.
  const std::string& audit_name() const { return identity.empty() ? peer : identity; }
};

class AccessPolicy {
 public:
  // Validates the config: identities non-empty, token hashes 64 hex chars and unique, roles
  // and keyrings given. `require_client_certs` (mTLS configured) also enables authentication.
  static absl::StatusOr<std::unique_ptr<AccessPolicy>> New(const v1::AuthConfig& config,
                                                           bool require_client_certs);

  // True when calls must be authenticated (API tokens, rules or mTLS are configured).
  bool authentication_required() const { return authn_required_; }
  // True when rules exist: then anything not granted is denied.
  bool authorization_enabled() const { return !grants_.empty(); }

  // The identity of a bearer token, if it is a configured API token.
  std::optional<std::string> IdentityOfToken(absl::string_view token) const;
  // Whether `identity` may act as `role` on `keyring`. Always true without rules.
  bool Allowed(absl::string_view identity, Role role, absl::string_view keyring) const;

 private:
  AccessPolicy() = default;
  bool authn_required_ = false;
  absl::flat_hash_map<std::string, std::string> identity_by_token_hash_;  // hex sha256 -> id
  // identity -> role -> keyrings ("*" = any)
  absl::flat_hash_map<std::string, absl::flat_hash_map<int, absl::flat_hash_set<std::string>>>
      grants_;
};

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_ACCESS_POLICY_H_
