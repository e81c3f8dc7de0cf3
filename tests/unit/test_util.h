// Small helpers shared by the unit tests.
#ifndef SESSIONTOKEN_TESTS_UNIT_TEST_UTIL_H_
#define SESSIONTOKEN_TESTS_UNIT_TEST_UTIL_H_

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace sessiontoken::testing {

inline std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }
inline std::string ToHex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh empty directory under TEST_TMPDIR or /tmp.
inline std::string MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/sessiontoken-test-XXXXXX";
  char* dir = ::mkdtemp(tmpl.data());
  return dir ? std::string(dir) : std::string();
}

}  // namespace sessiontoken::testing

#endif  // SESSIONTOKEN_TESTS_UNIT_TEST_UTIL_H_
