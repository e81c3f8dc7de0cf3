#include "server/config/config.h"

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "server/keyring/keyring.h"
#include "server/keyring/policy.h"

namespace sessiontoken::config {
namespace {

class Collector final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty())
      first_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

absl::Status FieldError(absl::string_view source, int line, absl::string_view field,
                        absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": line ", line + 1, ": ", field, ": ", message));
}

bool BadDuration(const google::protobuf::Duration& d) { return d.seconds() < 0 || d.nanos() < 0; }

}  // namespace

engine::Limits ToLimits(const v1::Limits& l) {
  engine::Limits out;
  if (l.max_payload_bytes() > 0) out.max_payload_bytes = static_cast<size_t>(l.max_payload_bytes());
  if (l.has_max_ttl()) out.max_ttl = absl::Seconds(l.max_ttl().seconds());
  if (l.has_max_clock_skew()) {
    out.max_clock_skew =
        absl::Seconds(l.max_clock_skew().seconds()) + absl::Nanoseconds(l.max_clock_skew().nanos());
  }
  // Negative values reach ValidateLimits as huge ones and are refused there, naming the field.
  if (l.max_revocations() != 0) out.max_revocations = static_cast<size_t>(l.max_revocations());
  return out;
}

absl::StatusOr<v1::ServerConfig> ParseConfig(absl::string_view text, absl::string_view source,
                                             std::optional<absl::Duration> max_ttl_override,
                                             absl::Duration default_max_ttl) {
  v1::ServerConfig cfg;
  google::protobuf::TextFormat::Parser parser;
  Collector errors;
  google::protobuf::TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &cfg)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", errors.first()));
  }
  const auto* d = v1::ServerConfig::descriptor();
  auto line_of = [&](const char* field, int index = -1) {
    return tree.GetLocation(d->FindFieldByName(field), index).line;
  };
  const v1::Limits& l = cfg.limits();
  if (l.max_payload_bytes() < 0) {
    return FieldError(source, line_of("limits"), "limits.max_payload_bytes",
                      "must not be negative (0 = default)");
  }
  if (absl::Status s = engine::ValidateLimits(ToLimits(l)); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": line ", line_of("limits") + 1, ": limits.", s.message()));
  }
  if (l.max_batch_items() < 0) {
    return FieldError(source, line_of("limits"), "limits.max_batch_items", "must not be negative");
  }
  if (BadDuration(cfg.scheduler_interval()) || BadDuration(cfg.shutdown_grace())) {
    return FieldError(source, line_of("scheduler_interval"), "scheduler_interval",
                      "must not be negative");
  }
  absl::Duration server_max_ttl = default_max_ttl;
  if (max_ttl_override.has_value()) {
    server_max_ttl = *max_ttl_override;
  } else if (l.has_max_ttl()) {
    server_max_ttl = absl::Seconds(l.max_ttl().seconds());
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < cfg.keyrings_size(); ++i) {
    const v1::KeyringConfig& k = cfg.keyrings(i);
    const int line = line_of("keyrings", i);
    const std::string field = absl::StrCat("keyrings[", i, "]");
    if (absl::Status s = keyring::ValidateKeyringName(k.name()); !s.ok()) {
      return FieldError(source, line, field + ".name", s.message());
    }
    if (!names.insert(k.name()).second) {
      return FieldError(source, line, field + ".name",
                        absl::StrCat("keyring \"", k.name(), "\" is listed twice"));
    }
    if (absl::Status s = keyring::ValidatePolicy(k.policy(), server_max_ttl); !s.ok()) {
      return FieldError(source, line, field, s.message());
    }
  }
  return cfg;
}

absl::StatusOr<v1::ServerConfig> LoadConfigFile(const std::string& path,
                                                std::optional<absl::Duration> max_ttl_override,
                                                absl::Duration default_max_ttl) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("config: cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, max_ttl_override, default_max_ttl);
}

}  // namespace sessiontoken::config
