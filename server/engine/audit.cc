#include "server/engine/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sessiontoken::engine {
namespace {

// The JSON escape of one byte (non-ASCII bytes as \u00XX, one per byte).
void AppendEscaped(unsigned char c, std::string* out) {
  switch (c) {
    case '"':
      out->append("\\\"");
      return;
    case '\\':
      out->append("\\\\");
      return;
    case '\n':
      out->append("\\n");
      return;
    case '\r':
      out->append("\\r");
      return;
    case '\t':
      out->append("\\t");
      return;
    default:
      if (c < 0x20 || c >= 0x7f) {
        absl::StrAppendFormat(out, "\\u%04x", c);
      } else {
        out->push_back(static_cast<char>(c));
      }
  }
}

}  // namespace

// `s` as a JSON string of at most `max_chars` characters between the quotes, plus a
// "...(N more bytes)" marker when it had to be cut.
void AppendJsonString(absl::string_view s, size_t max_chars, std::string* out) {
  out->push_back('"');
  const size_t start = out->size();
  size_t i = 0;
  for (; i < s.size(); ++i) {
    const size_t before = out->size();
    AppendEscaped(static_cast<unsigned char>(s[i]), out);
    if (out->size() - start > max_chars) {
      out->resize(before);
      break;
    }
  }
  if (i < s.size()) absl::StrAppend(out, "...(", s.size() - i, " more bytes)");
  out->push_back('"');
}

std::string AuditOutcome(const absl::Status& s) {
  if (s.ok()) return "ok";
  return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
}

std::string AuditEventToJson(const AuditEvent& e) {
  std::string out = "{\"time\":";
  AppendJsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.time, absl::UTCTimeZone()),
                   kMaxAuditFieldChars, &out);
  out.append(",\"caller\":");
  AppendJsonString(e.caller, kMaxAuditFieldChars, &out);
  out.append(",\"operation\":");
  AppendJsonString(e.operation, kMaxAuditFieldChars, &out);
  out.append(",\"keyring\":");
  AppendJsonString(e.keyring, kMaxAuditFieldChars, &out);
  absl::StrAppend(&out, ",\"key_id\":", e.key_id, ",\"revision\":", e.revision, ",\"outcome\":");
  AppendJsonString(e.outcome, kMaxAuditMessageChars, &out);
  if (!e.warning.empty()) {
    out.append(",\"warning\":");
    AppendJsonString(e.warning, kMaxAuditMessageChars, &out);
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<std::unique_ptr<JsonLinesAuditLog>> JsonLinesAuditLog::Open(
    const std::string& path) {
  if (path == "-") return std::unique_ptr<JsonLinesAuditLog>(new JsonLinesAuditLog(1, false));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit_log: cannot open ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<JsonLinesAuditLog>(new JsonLinesAuditLog(fd, true));
}

JsonLinesAuditLog::~JsonLinesAuditLog() {
  if (owned_) ::close(fd_);
}

void JsonLinesAuditLog::Record(const AuditEvent& e) {
  std::string line = AuditEventToJson(e);
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace sessiontoken::engine
