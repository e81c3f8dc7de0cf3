#include "client/cpp/service_config.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::client {

namespace {

namespace pb = google::protobuf;

absl::StatusOr<absl::Duration> ParseTimeout(const pb::Value& v) {
  double seconds = 0;
  if (v.kind_case() != pb::Value::kStringValue || !absl::EndsWith(v.string_value(), "s") ||
      !absl::SimpleAtod(absl::string_view(v.string_value()).substr(0, v.string_value().size() - 1),
                        &seconds) ||
      !(seconds > 0)) {
    return absl::InvalidArgumentError("service config: a timeout is not a duration like \"2s\"");
  }
  return absl::Seconds(seconds);
}

// Removes entry["timeout"] and records it under each of entry["name"].
absl::Status TakeTimeout(pb::Struct& entry, ServiceConfig& out) {
  auto it = entry.mutable_fields()->find("timeout");
  if (it == entry.mutable_fields()->end()) return absl::OkStatus();
  absl::StatusOr<absl::Duration> timeout = ParseTimeout(it->second);
  if (!timeout.ok()) return timeout.status();
  entry.mutable_fields()->erase(it);
  const auto names = entry.fields().find("name");
  if (names == entry.fields().end()) return absl::OkStatus();
  for (const pb::Value& name : names->second.list_value().values()) {
    const auto& f = name.struct_value().fields();
    auto text = [&f](const char* key) {
      auto i = f.find(key);
      return i == f.end() ? std::string() : i->second.string_value();
    };
    out.timeouts[{text("service"), text("method")}] = *timeout;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Duration ServiceConfig::Timeout(absl::string_view service, absl::string_view method) const {
  for (absl::string_view m : {method, absl::string_view()}) {
    auto it = timeouts.find({std::string(service), std::string(m)});
    if (it != timeouts.end()) return it->second;
  }
  return absl::InfiniteDuration();
}

absl::StatusOr<ServiceConfig> ParseServiceConfig(absl::string_view json) {
  pb::Struct root;
  if (auto s = pb::util::JsonStringToMessage(std::string(json), &root); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("service config: ", s.ToString()));
  }
  auto list = root.mutable_fields()->find("methodConfig");
  if (list == root.mutable_fields()->end() || !list->second.has_list_value()) {
    return absl::InvalidArgumentError("service config: no methodConfig list");
  }
  ServiceConfig out;
  for (pb::Value& entry : *list->second.mutable_list_value()->mutable_values()) {
    if (absl::Status s = TakeTimeout(*entry.mutable_struct_value(), out); !s.ok()) return s;
  }
  if (auto s = pb::util::MessageToJsonString(root, &out.grpc_json); !s.ok()) {
    return absl::InternalError(absl::StrCat("service config: ", s.ToString()));
  }
  return out;
}

}  // namespace sessiontoken::client
