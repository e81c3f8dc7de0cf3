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

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string AuditEventToJson(const AuditEvent& e) {
  std::string out = "{\"time\":";
  AppendJsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.time, absl::UTCTimeZone()), &out);
  out.append(",\"caller\":");
  AppendJsonString(e.caller, &out);
  out.append(",\"operation\":");
  AppendJsonString(e.operation, &out);
  out.append(",\"keyring\":");
  AppendJsonString(e.keyring, &out);
  absl::StrAppend(&out, ",\"key_id\":", e.key_id, ",\"revision\":", e.revision, ",\"outcome\":");
  AppendJsonString(e.outcome, &out);
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
