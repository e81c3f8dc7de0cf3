// AccessPolicy: who may call what. Maps bearer tokens (by SHA-256) to identities and decides
// whether an identity holds a role (sign / verify / admin) on a keyring. Pure logic, no gRPC.
//
// Identities carry the kind of credential that proved them, so that one kind can never pass
// for another (a certificate with DNS SAN "shop-frontend" is not the API token identity
// "shop-frontend"): "token:<api_tokens identity>", "uri:<certificate SAN URI>",
// "dns:<certificate SAN DNS name>". Rules name identities the same way.
#ifndef SESSIONTOKEN_SERVER_SERVICE_ACCESS_POLICY_H_
#define SESSIONTOKEN_SERVER_SERVICE_ACCESS_POLICY_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sessiontoken/v1/config.pb.h"

namespace sessiontoken::service {

using Role = v1::AuthConfig::Role;

inline constexpr absl::string_view kTokenIdentity = "token:";
inline constexpr absl::string_view kUriIdentity = "uri:";
inline constexpr absl::string_view kDnsIdentity = "dns:";

// Who is calling: the authenticated identity, or none.
struct Caller {
  std::string identity;          // "token:…", "uri:…" or "dns:…"; empty when unauthenticated
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
  //
  // A rule's identity names its kind ("token:shop", "uri:spiffe://prod/ops", "dns:host");
  // a "token:" rule must name a configured API token. Rules written before kinds existed
  // (no prefix) are read only where that is unambiguous, and noted (legacy_notes()):
  // a name that is an API token identity means that token only (a certificate SAN of the
  // same name no longer gets its rights); a name with a ':' (no DNS name has one) means a
  // certificate SAN URI; any other name is refused, since it may have been meant for a token
  // (e.g. one since removed) or for a DNS SAN: the message says how to write it.
  static absl::StatusOr<std::unique_ptr<AccessPolicy>> New(const v1::AuthConfig& config,
                                                           bool require_client_certs);

  // One line per legacy rule identity (no kind): how it was read and how to write it.
  const std::vector<std::string>& legacy_notes() const { return legacy_notes_; }

  // True when calls must be authenticated (API tokens, rules or mTLS are configured).
  bool authentication_required() const { return authn_required_; }
  // True when rules exist: then anything not granted is denied.
  bool authorization_enabled() const { return !grants_.empty(); }

  // The identity ("token:<name>") of a bearer token, if it is a configured API token.
  std::optional<std::string> IdentityOfToken(absl::string_view token) const;
  // Whether `identity` (with its kind) may act as `role` on `keyring`. Always true without
  // rules.
  bool Allowed(absl::string_view identity, Role role, absl::string_view keyring) const;

 private:
  AccessPolicy() = default;
  // The kinded identity a rule names (see New); `field` names it in errors and notes.
  absl::StatusOr<std::string> RuleIdentity(const std::string& identity, const std::string& field);

  bool authn_required_ = false;
  std::vector<std::string> legacy_notes_;
  absl::flat_hash_set<std::string> token_identities_;  // api_tokens identities, without kind
  absl::flat_hash_map<std::string, std::string> identity_by_token_hash_;  // hex sha256 -> id
  // identity -> role -> keyrings ("*" = any)
  absl::flat_hash_map<std::string, absl::flat_hash_map<int, absl::flat_hash_set<std::string>>>
      grants_;
};

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_ACCESS_POLICY_H_
