#include "server/crypto/secret_strength.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/crypto/secret_bytes.h"

namespace sessiontoken::crypto {
namespace {

// Example and placeholder secrets from tutorials, framework docs and generators'
// defaults, in normalized form (see Normalize): these are the first entries of every
// wordlist that cracking tools try against a cookie.
// clang-format off
constexpr absl::string_view kWellKnown[] = {
    // Flask, its tutorials and books; Django, Rails, Express, JWT examples.
    "dev", "devkey", "developmentkey", "secret", "secretkey", "mysecret", "mysecretkey",
    "yoursecretkey", "yoursecret", "supersecret", "supersecretkey", "youwillneverguess",
    "hardtoguessstring", "5y2lf4q8z", "flask", "flasksecret", "flasksecretkey", "flaskkey",
    "keyboardcat", "your256bitsecret", "secretkeybase", "shh", "shhh", "shhhh", "shhhhh",
    "shhhhhh", "sessionsecret", "mysessionsecret", "cookiesecret", "appsecret", "appsecretkey",
    "applicationsecret", "jwtsecret", "tokensecret", "sekrit", "sekret",
    // Placeholders.
    "changeme", "changethis", "changeit", "pleasechangeme", "changemeplease", "replaceme",
    "putyoursecrethere", "entersecrethere", "yoursecrethere", "secrethere", "todo", "fixme",
    "xxx", "xxxx", "none", "null", "undefined", "default", "defaultsecret", "defaultkey",
    "example", "examplesecret", "sample", "test", "testing", "testsecret", "testkey",
    // Common "secret-sounding" phrases and passwords.
    "thisisasecret", "thisismysecret", "thisisasecretkey", "notsecret", "notasecret",
    "notsosecret", "insecure", "keepitsecret", "keepitsecretkeepitsafe", "topsecret",
    "verysecret", "verysecretkey", "secretsecret", "secretpassword", "mysecretpassword",
    "s3cr3t", "s3cret", "secr3t", "password", "passw0rd", "letmein", "qwerty", "admin", "hello",
    "helloworld", "correcthorsebatterystaple", "key", "mykey", "abc",
};
// clang-format on

// Lower-case letters and digits only, with trailing digits removed: "Super-Secret_Key",
// "super secret key!" and "supersecretkey123" all become "supersecretkey". The result is
// derived from a secret: reserved once (no reallocation leaves copies) and wiped by the
// caller.
std::string Normalize(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!out.empty() && absl::ascii_isdigit(static_cast<unsigned char>(out.back()))) {
    out.pop_back();
  }
  return out;
}

bool IsWellKnown(absl::string_view s) {
  std::string n = Normalize(s);
  const bool known = !n.empty() && std::find(std::begin(kWellKnown), std::end(kWellKnown), n) !=
                                       std::end(kWellKnown);
  n.resize(n.capacity());  // popped digits stay in the buffer: wipe all of it
  SecureWipe(n.data(), n.size());
  return known;
}

// The shortest prefix whose repetition makes up `s` ("abcabcab" -> "abc").
absl::string_view RepeatingUnit(absl::string_view s) {
  for (size_t p = 1; p < s.size(); ++p) {
    bool repeats = true;
    for (size_t i = p; i < s.size() && repeats; ++i) repeats = s[i] == s[i - p];
    if (repeats) return s.substr(0, p);
  }
  return s;
}

double EstimateBits(absl::string_view s) {
  bool lower = false, upper = false, digit = false, punct = false, other = false;
  std::array<bool, 256> seen{};
  size_t distinct = 0;
  for (unsigned char c : s) {
    lower |= absl::ascii_islower(c);
    upper |= absl::ascii_isupper(c);
    digit |= absl::ascii_isdigit(c);
    punct |= absl::ascii_ispunct(c) || c == ' ';
    other |= c >= 0x7f || (c < 0x20);
    if (!seen[c]) ++distinct, seen[c] = true;
  }
  // Hex digits alone (a hex-encoded key) have 16 symbols, not 36.
  const bool hex = !upper && !punct && !other &&
                   std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isxdigit(c); });
  size_t pool = hex ? 16 : 26 * lower + 26 * upper + 10 * digit + 33 * punct + 161 * other;
  pool = std::min(pool, std::max<size_t>(distinct, 2));
  return static_cast<double>(s.size()) * std::log2(static_cast<double>(pool));
}

}  // namespace

SecretStrength EstimateSecretStrength(absl::string_view secret) {
  SecretStrength st;
  const absl::string_view unit = RepeatingUnit(secret);
  if (IsWellKnown(secret) || IsWellKnown(unit)) {
    st.weak = true;
    st.reason =
        "it is a well-known example or placeholder secret (tutorials, framework defaults), "
        "the first guess of any cracking wordlist";
  } else {
    st.estimated_bits = EstimateBits(unit);
    if (secret.size() < kMinStrongSecretBytes) {
      st.weak = true;
      st.reason = absl::StrCat("it is shorter than ", kMinStrongSecretBytes, " bytes");
    } else if (st.estimated_bits < kMinStrongSecretBits) {
      st.weak = true;
      st.reason = absl::StrFormat(
          "its estimated strength is about %d bits (too few distinct characters or too short; "
          "at least %d wanted)",
          static_cast<int>(st.estimated_bits), static_cast<int>(kMinStrongSecretBits));
    }
  }
  if (st.weak) {
    st.warning = absl::StrCat(
        "weak secret: ", st.reason,
        ". Anyone holding one cookie signed with it can recover it offline and forge "
        "sessions: rotate right after importing (so it never signs), and shorten the "
        "imported key's verify window (disable it as soon as the sessions you must keep "
        "were re-issued); see docs/operations.md, \"Migrating a Flask app's SECRET_KEY\"");
  }
  return st;
}

}  // namespace sessiontoken::crypto
