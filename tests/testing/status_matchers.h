// gmock matchers for absl::Status and absl::StatusOr<T>:
//   EXPECT_THAT(engine->Sign(...), IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, "payload"));
//   EXPECT_THAT(store.List(), IsOkAndHolds(ElementsAre("a", "b")));
#ifndef SESSIONTOKEN_TESTS_TESTING_STATUS_MATCHERS_H_
#define SESSIONTOKEN_TESTS_TESTING_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"

namespace sessiontoken::testing {

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = StatusOf(arg);
  if (!s.ok()) *result_listener << "status: " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = StatusOf(arg);
  *result_listener << "status: " << s;
  return s.code() == code;
}

// The code matches and the message contains `substring`.
MATCHER_P2(StatusIs, code, substring,
           "has status code " + absl::StatusCodeToString(code) + " and a message containing \"" +
               std::string(substring) + "\"") {
  const absl::Status& s = StatusOf(arg);
  *result_listener << "status: " << s;
  return s.code() == code && absl::StrContains(s.message(), substring);
}

// A StatusOr that is OK and whose value matches `value_matcher`.
MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status: " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace sessiontoken::testing

#endif  // SESSIONTOKEN_TESTS_TESTING_STATUS_MATCHERS_H_
