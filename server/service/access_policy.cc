#include "server/service/access_policy.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/crypto/hmac.h"

namespace sessiontoken::service {

absl::StatusOr<std::unique_ptr<AccessPolicy>> AccessPolicy::New(const v1::AuthConfig& config,
                                                                bool require_client_certs) {
  std::unique_ptr<AccessPolicy> p(new AccessPolicy());
  for (int i = 0; i < config.api_tokens_size(); ++i) {
    const auto& t = config.api_tokens(i);
    const std::string field = absl::StrCat("auth.api_tokens[", i, "]");
    if (t.identity().empty()) return absl::InvalidArgumentError(field + ".identity: required");
    std::string hash = absl::AsciiStrToLower(t.sha256());
    if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return absl::InvalidArgumentError(field + ".sha256: must be 64 hex characters");
    }
    if (!p->identity_by_token_hash_.emplace(hash, absl::StrCat(kTokenIdentity, t.identity()))
             .second) {
      return absl::InvalidArgumentError(field + ".sha256: duplicate token");
    }
    p->token_identities_.insert(t.identity());
  }
  for (int i = 0; i < config.rules_size(); ++i) {
    const auto& r = config.rules(i);
    const std::string field = absl::StrCat("auth.rules[", i, "]");
    if (r.identity().empty()) return absl::InvalidArgumentError(field + ".identity: required");
    absl::StatusOr<std::string> identity = p->RuleIdentity(r.identity(), field + ".identity");
    if (!identity.ok()) return identity.status();
    if (r.keyrings().empty()) return absl::InvalidArgumentError(field + ".keyrings: required");
    if (r.roles().empty()) return absl::InvalidArgumentError(field + ".roles: required");
    for (int role : r.roles()) {
      if (role == v1::AuthConfig::ROLE_UNSPECIFIED) {
        return absl::InvalidArgumentError(field + ".roles: ROLE_UNSPECIFIED is not a role");
      }
      auto& keyrings = p->grants_[*identity][role];
      for (const std::string& k : r.keyrings()) keyrings.insert(k);
    }
  }
  p->authn_required_ =
      require_client_certs || !config.api_tokens().empty() || !config.rules().empty();
  return p;
}

absl::StatusOr<std::string> AccessPolicy::RuleIdentity(const std::string& id,
                                                       const std::string& field) {
  for (absl::string_view kind : {kTokenIdentity, kUriIdentity, kDnsIdentity}) {
    if (!absl::StartsWith(id, kind)) continue;
    absl::string_view name = absl::string_view(id).substr(kind.size());
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": \"", id, "\" names no one"));
    }
    if (kind == kTokenIdentity && !token_identities_.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": \"", id, "\": no entry of auth.api_tokens has identity \"", name, "\""));
    }
    return id;
  }
  // A rule from before identities had kinds.
  std::string kinded;
  if (token_identities_.contains(id)) {
    kinded = absl::StrCat(kTokenIdentity, id);
  } else if (absl::StrContains(id, ':')) {
    kinded = absl::StrCat(kUriIdentity, id);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": \"", id, "\" does not say which kind of identity it is; write \"", kTokenIdentity,
        id, "\" for an API token (none is configured with this identity) or \"", kDnsIdentity, id,
        "\" for a client certificate's DNS SAN (docs/security.md)"));
  }
  legacy_notes_.push_back(absl::StrCat(field, ": \"", id, "\" has no kind; read as \"", kinded,
                                       "\" (only). Write it so; see docs/security.md"));
  return kinded;
}

std::optional<std::string> AccessPolicy::IdentityOfToken(absl::string_view token) const {
  if (token.empty()) return std::nullopt;
  uint8_t digest[32];
  crypto::Sha256(token, digest);
  auto it = identity_by_token_hash_.find(
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), 32)));
  if (it == identity_by_token_hash_.end()) return std::nullopt;
  return it->second;
}

bool AccessPolicy::Allowed(absl::string_view identity, Role role, absl::string_view keyring) const {
  if (grants_.empty()) return true;  // authentication only, no rules
  auto who = grants_.find(identity);
  if (who == grants_.end()) return false;
  auto what = who->second.find(static_cast<int>(role));
  if (what == who->second.end()) return false;
  return what->second.contains(keyring) || what->second.contains("*");
}

}  // namespace sessiontoken::service
