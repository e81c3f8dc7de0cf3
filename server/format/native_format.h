// The native token format (token/native.h) over a keyring's keys: Sign with the primary
// (v2 tokens: a random token id, the subject, the payload in clear or sealed), Verify
// either version by routing the token's key id to its key in O(1).
#ifndef SESSIONTOKEN_SERVER_FORMAT_NATIVE_FORMAT_H_
#define SESSIONTOKEN_SERVER_FORMAT_NATIVE_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/format/key_macs.h"
#include "server/format/result.h"
#include "server/keyring/keyring.h"

namespace sessiontoken::format {

// What a native Sign issues besides the payload and audience.
struct NativeSignParams {
  int64_t issued_at = 0;
  int64_t expires_at = 0;
  absl::string_view subject;  // at most token::kMaxSubjectSize bytes
  bool seal = false;          // seal the payload (AES-256-GCM under the key's sealing key)
};

// Issues a v2 token. Preconditions (the engine's limits): payload, audience and subject
// within the token limits. InvalidArgument when the token would exceed the cookie budget
// (token::kMaxTokenSize) with this payload and subject.
absl::StatusOr<SignResult> SignNative(const KeyMac& primary, absl::string_view payload,
                                      absl::string_view audience, const NativeSignParams& params);

VerifyResult VerifyNative(const keyring::Keyring& keyring, const KeyMacs& macs,
                          absl::string_view token, absl::string_view audience, absl::Time now,
                          const VerifyOptions& options);

// The text form of a raw token id: unpadded base64url (22 characters for 16 bytes).
std::string TokenIdText(absl::string_view raw_token_id);

}  // namespace sessiontoken::format

#endif  // SESSIONTOKEN_SERVER_FORMAT_NATIVE_FORMAT_H_
