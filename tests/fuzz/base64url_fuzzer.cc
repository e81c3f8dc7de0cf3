// Fuzz target "base64url": token::Base64UrlDecodeStrict / Base64UrlEncode(Append).
// Properties, for every input:
//  * Round trip: when strict decoding succeeds, encoding the result gives the input back
//    (each byte string has exactly one accepted encoding), with the documented size.
//  * Differential: strict decoding succeeds exactly when Abseil's web-safe decoder accepts
//    the input and re-encodes it to the same text, and yields the same bytes; decoding
//    replaces (does not append to) the output string.
//  * Encoding the input as bytes equals Abseil's unpadded web-safe encoding, has
//    Base64UrlEncodedSize() characters, decodes back to the input, and Append keeps what
//    was already in the string.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "server/token/base64url.h"
#include "tests/fuzz/fixture.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sessiontoken;
  const absl::string_view in(reinterpret_cast<const char*>(data), size);

  std::string decoded = "previous contents";
  const bool ok = token::Base64UrlDecodeStrict(in, &decoded);
  std::string model;
  const bool model_ok = fuzz::ModelBase64UrlDecode(in, &model);
  FUZZ_CHECK(ok == model_ok);
  if (ok) {
    FUZZ_CHECK(decoded == model);
    FUZZ_CHECK(token::Base64UrlEncode(decoded) == in);
    FUZZ_CHECK(token::Base64UrlEncodedSize(decoded.size()) == in.size());
  }

  const std::string encoded = token::Base64UrlEncode(in);
  FUZZ_CHECK(encoded == absl::WebSafeBase64Escape(in));
  FUZZ_CHECK(encoded.size() == token::Base64UrlEncodedSize(in.size()));
  std::string back = "previous contents";
  FUZZ_CHECK(token::Base64UrlDecodeStrict(encoded, &back));
  FUZZ_CHECK(back == in);
  std::string appended = "st1.";
  token::Base64UrlEncodeAppend(in, &appended);
  FUZZ_CHECK(appended == "st1." + encoded);
  return 0;
}
