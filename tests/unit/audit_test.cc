// The audit log's line format: every text field is capped, so no request can make the server
// write more than a few KiB per event, whatever it sends.
#include "server/engine/audit.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace sessiontoken::engine {
namespace {

AuditEvent Event() {
  AuditEvent e;
  e.time = absl::FromUnixSeconds(1800000000);
  e.caller = "token:ops";
  e.operation = "rotate";
  e.keyring = "shop";
  e.key_id = 7;
  e.revision = 3;
  e.outcome = "ok";
  return e;
}

TEST(AuditTest, ShortEventsAreWrittenWhole) {
  EXPECT_EQ(AuditEventToJson(Event()),
            "{\"time\":\"2027-01-15T08:00:00.000Z\",\"caller\":\"token:ops\",\"operation\":"
            "\"rotate\",\"keyring\":\"shop\",\"key_id\":7,\"revision\":3,\"outcome\":\"ok\"}");
  AuditEvent w = Event();
  w.warning = "weak \"secret\"\n";
  EXPECT_TRUE(absl::EndsWith(AuditEventToJson(w),
                             ",\"outcome\":\"ok\",\"warning\":\"weak \\\"secret\\\"\\n\"}"));
}

TEST(AuditTest, EveryTextFieldIsCapped) {
  // 1 MiB per field, of bytes that escape to 6 characters each (the worst case).
  const std::string huge(1 << 20, '\xff');
  AuditEvent e = Event();
  e.caller = e.operation = e.keyring = e.outcome = e.warning = huge;
  const std::string line = AuditEventToJson(e);
  const size_t bound = 3 * (kMaxAuditFieldChars + 40) + 2 * (kMaxAuditMessageChars + 40) + 200;
  EXPECT_LE(line.size(), bound);
  EXPECT_LE(line.size(), 3000u);  // "a few KiB" at most, for any event
  EXPECT_TRUE(absl::StrContains(line, "...(1048534 more bytes)")) << line.substr(0, 400);
  // Cut between escapes, never inside one: every "\u" is followed by 4 hex digits.
  for (size_t i = line.find("\\u"); i != std::string::npos; i = line.find("\\u", i + 1)) {
    ASSERT_LE(i + 6, line.size());
    EXPECT_EQ(line.substr(i, 6), "\\u00ff");
  }
  // Plain ASCII is cut at exactly the cap.
  AuditEvent a = Event();
  a.keyring = std::string(1000, 'k');
  const std::string cut = AuditEventToJson(a);
  EXPECT_TRUE(absl::StrContains(
      cut, "\"keyring\":\"" + std::string(kMaxAuditFieldChars, 'k') + "...(744 more bytes)\""))
      << cut;
}

}  // namespace
}  // namespace sessiontoken::engine
