#include "server/format/result.h"

namespace sessiontoken::format {

absl::string_view VerifyStatusName(VerifyStatus s) {
  switch (s) {
    case VerifyStatus::kValid:
      return "VALID";
    case VerifyStatus::kMalformed:
      return "MALFORMED";
    case VerifyStatus::kUnknownKey:
      return "UNKNOWN_KEY";
    case VerifyStatus::kBadSignature:
      return "BAD_SIGNATURE";
    case VerifyStatus::kExpired:
      return "EXPIRED";
    case VerifyStatus::kNotYetValid:
      return "NOT_YET_VALID";
    case VerifyStatus::kKeyDisabled:
      return "KEY_DISABLED";
    case VerifyStatus::kRevoked:
      return "REVOKED";
    case VerifyStatus::kWrongAudience:
      return "WRONG_AUDIENCE";
  }
  return "UNKNOWN";
}

}  // namespace sessiontoken::format
