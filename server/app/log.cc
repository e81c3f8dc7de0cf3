#include "server/app/log.h"

#include <atomic>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/engine/audit.h"

namespace sessiontoken::app {
namespace {

std::atomic<LogFormat> current_format{LogFormat::kText};

// Log text is capped like audit fields: no input can make a line unbounded.
constexpr size_t kMaxMessageChars = 4096;
constexpr size_t kMaxFieldChars = engine::kMaxAuditFieldChars;

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name.empty() || name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log_format: \"", name, "\" is not one of text, json"));
}

void SetLogFormat(LogFormat format) { current_format.store(format); }

std::string FormatLogLine(LogFormat format, absl::Time time, absl::string_view level,
                          absl::string_view message, std::initializer_list<LogField> fields) {
  const std::string when =
      absl::FormatTime(format == LogFormat::kJson ? "%Y-%m-%dT%H:%M:%E3SZ" : "%Y-%m-%dT%H:%M:%SZ",
                       time, absl::UTCTimeZone());
  if (format == LogFormat::kText) {
    std::string line = absl::StrCat(when, " ", level, " ", message);
    for (const auto& [k, v] : fields) absl::StrAppend(&line, " ", k, "=", v);
    return line;
  }
  std::string line = "{\"time\":";
  engine::AppendJsonString(when, kMaxFieldChars, &line);
  line += ",\"level\":";
  engine::AppendJsonString(level, kMaxFieldChars, &line);
  line += ",\"message\":";
  engine::AppendJsonString(message, kMaxMessageChars, &line);
  line += ",\"fields\":{";
  bool first = true;
  for (const auto& [k, v] : fields) {
    if (!first) line += ",";
    first = false;
    engine::AppendJsonString(k, kMaxFieldChars, &line);
    line += ":";
    engine::AppendJsonString(v, kMaxFieldChars, &line);
  }
  line += "}}";
  return line;
}

void Log(absl::string_view level, absl::string_view message,
         std::initializer_list<LogField> fields) {
  std::string line = FormatLogLine(current_format.load(), absl::Now(), level, message, fields);
  line += "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace sessiontoken::app
