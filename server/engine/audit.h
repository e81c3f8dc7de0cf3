// AuditLog: one JSON line per admin operation (time, caller, operation, keyring, key id,
// resulting revision, outcome). Events never contain key material: they are built only
// from metadata and from error messages, which never carry material either. Every text
// field is capped, so no request can make one line longer than a few KiB.
#ifndef SESSIONTOKEN_SERVER_ENGINE_AUDIT_H_
#define SESSIONTOKEN_SERVER_ENGINE_AUDIT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sessiontoken::engine {

struct AuditEvent {
  absl::Time time;
  std::string caller;     // identity when known, else the peer address or "scheduler"
  std::string operation;  // "rotate", "promote", "disable", "import", "create_keyring"...
  std::string keyring;
  uint32_t key_id = 0;    // 0 when the operation names no key
  uint64_t revision = 0;  // revision produced (0 on failure)
  std::string outcome;    // "ok", or "<CODE>: <message>"
  std::string warning;    // optional: something the operator must act on (e.g. a weak secret)
};

// The longest JSON-escaped form of one text field of an event, in characters; a longer value
// is cut there and ends with "...(N more bytes)". The outcome and the warning may be longer
// than the names.
inline constexpr size_t kMaxAuditFieldChars = 256;
inline constexpr size_t kMaxAuditMessageChars = 512;

// Appends `s` as a JSON string (quotes included) of at most `max_chars` characters between
// the quotes, non-ASCII bytes as \u00XX, plus a "...(N more bytes)" marker when cut.
void AppendJsonString(absl::string_view s, size_t max_chars, std::string* out);

// An event's outcome for `s`: "ok", or "<CODE>: <message>".
std::string AuditOutcome(const absl::Status& s);

// The JSON line for an event (no trailing newline); "warning" only when set.
std::string AuditEventToJson(const AuditEvent& e);

class AuditLog {
 public:
  virtual ~AuditLog() = default;
  virtual void Record(const AuditEvent& e) = 0;
};

// Appends JSON lines to a file (created 0600) or to stdout ("-"). Thread-safe; each line is
// written with one write(2) and flushed.
class JsonLinesAuditLog final : public AuditLog {
 public:
  static absl::StatusOr<std::unique_ptr<JsonLinesAuditLog>> Open(const std::string& path);
  ~JsonLinesAuditLog() override;
  void Record(const AuditEvent& e) override;

 private:
  JsonLinesAuditLog(int fd, bool owned) : fd_(fd), owned_(owned) {}
  absl::Mutex mu_;
  const int fd_;
  const bool owned_;
};

}  // namespace sessiontoken::engine

#endif  // SESSIONTOKEN_SERVER_ENGINE_AUDIT_H_
