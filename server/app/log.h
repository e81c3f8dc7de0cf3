// Server log lines on stderr, one per line, in the format chosen with --log_format:
//   text: "<UTC time> <LEVEL> <message>[ key=value...]"
//   json: {"time":"<UTC time>","level":"<LEVEL>","message":"...","fields":{"key":"value"}}
// Never pass a secret, a token or a payload, in the message or a field.
#ifndef SESSIONTOKEN_SERVER_APP_LOG_H_
#define SESSIONTOKEN_SERVER_APP_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sessiontoken::app {

enum class LogFormat { kText, kJson };

// "text" or "json" ("" = text); InvalidArgument naming log_format otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// Chooses the format of every later line (process-wide; text until called).
void SetLogFormat(LogFormat format);

using LogField = std::pair<absl::string_view, absl::string_view>;

// One line (no trailing newline) as `format` writes it.
std::string FormatLogLine(LogFormat format, absl::Time time, absl::string_view level,
                          absl::string_view message, std::initializer_list<LogField> fields = {});

void Log(absl::string_view level, absl::string_view message,
         std::initializer_list<LogField> fields = {});

}  // namespace sessiontoken::app

#endif  // SESSIONTOKEN_SERVER_APP_LOG_H_
