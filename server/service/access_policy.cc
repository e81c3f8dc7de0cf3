#include "server/service/access_policy.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
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
    if (!p->identity_by_token_hash_.emplace(hash, t.identity()).second) {
      return absl::InvalidArgumentError(field + ".sha256: duplicate token");
    }
  }
  for (int i = 0; i < config.rules_size(); ++i) {
    const auto& r = config.rules(i);
    const std::string field = absl::StrCat("auth.rules[", i, "]");
    if (r.identity().empty()) return absl::InvalidArgumentError(field + ".identity: required");
    if (r.keyrings().empty()) return absl::InvalidArgumentError(field + ".keyrings: required");
    if (r.roles().empty()) return absl::InvalidArgumentError(field + ".roles: required");
    for (int role : r.roles()) {
      if (role == v1::AuthConfig::ROLE_UNSPECIFIED) {
        return absl::InvalidArgumentError(field + ".roles: ROLE_UNSPECIFIED is not a role");
      }
      auto& keyrings = p->grants_[r.identity()][role];
      for (const std::string& k : r.keyrings()) keyrings.insert(k);
    }
  }
  p->authn_required_ =
      require_client_certs || !config.api_tokens().empty() || !config.rules().empty();
  return p;
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
