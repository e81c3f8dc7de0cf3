#include "server/service/auth.h"

#include <grpcpp/security/auth_context.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::service {
namespace {

std::string FirstProperty(const grpc::AuthContext& ctx, const char* name) {
  for (const grpc::string_ref& v : ctx.FindPropertyValues(name)) {
    return std::string(v.data(), v.size());
  }
  return std::string();
}

}  // namespace

void Authorizer::ReadAuthorization(absl::string_view value, Caller* c) const {
  if (absl::StartsWithIgnoreCase(value, "Bearer ")) {
    std::optional<std::string> id = policy_->IdentityOfToken(value.substr(7));
    if (id.has_value()) {
      c->identity = *std::move(id);
      return;
    }
  }
  c->bad_credentials = true;
}

Caller Authorizer::IdentifyHttp(std::optional<absl::string_view> authorization,
                                std::string certificate_identity, std::string peer) const {
  Caller c;
  c.peer = std::move(peer);
  if (!enabled()) return c;
  if (authorization.has_value()) {
    ReadAuthorization(*authorization, &c);
  } else {
    c.identity = std::move(certificate_identity);
  }
  return c;
}

Caller Authorizer::Identify(const grpc::ServerContextBase& ctx) const {
  Caller c;
  c.peer = ctx.peer();
  if (!enabled()) return c;
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it != md.end()) {
    ReadAuthorization(absl::string_view(it->second.data(), it->second.size()), &c);
    return c;
  }
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    // The kind is part of the identity: a DNS SAN never matches a token's or a URI's rules.
    if (std::string uri = FirstProperty(*auth, "peer_uri"); !uri.empty()) {
      c.identity = absl::StrCat(kUriIdentity, uri);
    } else if (std::string dns = FirstProperty(*auth, "peer_dns"); !dns.empty()) {
      c.identity = absl::StrCat(kDnsIdentity, dns);
    }
  }
  return c;
}

grpc::Status Authorizer::Check(const Caller& caller, Role role, absl::string_view keyring,
                               absl::string_view rpc) const {
  if (!enabled()) return grpc::Status::OK;
  if (!caller.authenticated()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        caller.bad_credentials
                            ? "invalid credentials: the bearer token is not recognised"
                            : "authentication required: present a bearer token or a client "
                              "certificate");
  }
  if (policy_->Allowed(caller.identity, role, keyring)) return grpc::Status::OK;
  const std::string msg =
      absl::StrCat(caller.identity, " may not ", v1::AuthConfig::Role_Name(role), " on keyring \"",
                   keyring, "\"");
  if (audit_ != nullptr && !rpc.empty()) {  // an empty rpc marks a filter probe, not a call
    engine::AuditEvent e;
    e.time = clock_->Now();
    e.caller = caller.identity;
    e.operation = absl::StrCat("denied:", rpc);
    e.keyring = std::string(keyring);
    e.outcome = absl::StrCat("PERMISSION_DENIED: ", msg);
    audit_->Record(e);
  }
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, msg);
}

}  // namespace sessiontoken::service
