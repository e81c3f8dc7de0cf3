// balancing_probe TARGET COUNT [MAX]: signs payloads through one sessiontoken::client::Client
// on TARGET and prints each token on its own line, so that client_balancing_test.py can tell
// which server signed which call (the C++ client's channel and service config, as the CLI and
// C++ frontends use them). It signs COUNT calls and then, up to MAX calls in all (default
// COUNT) and 20 s, goes on until the tokens carry two different key ids: round_robin sends
// calls only to connected servers, and the first calls may all precede the second connection.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "client/cpp/client.h"

namespace {

// The key id of a native token (the first 4 bytes of its body), or "" if it has none.
std::string KeyIdOf(const std::string& token) {
  const size_t dot = token.find('.');
  std::string head;
  if (dot == std::string::npos || !absl::WebSafeBase64Unescape(token.substr(dot + 1, 8), &head) ||
      head.size() < 4) {
    return "";
  }
  return head.substr(0, 4);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: balancing_probe TARGET COUNT [MAX]\n");
    return 2;
  }
  sessiontoken::client::ClientOptions options;
  options.target = argv[1];
  absl::StatusOr<std::unique_ptr<sessiontoken::client::Client>> c =
      sessiontoken::client::Client::New(options);
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    return 1;
  }
  const int count = std::atoi(argv[2]);
  const int max = argc == 4 ? std::atoi(argv[3]) : count;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::set<std::string> key_ids;
  for (int i = 0; i < max; ++i) {
    if (i >= count && (key_ids.size() >= 2 || std::chrono::steady_clock::now() > deadline)) {
      break;
    }
    sessiontoken::v1::SignRequest req;
    req.set_keyring("default");
    req.set_payload("probe " + std::to_string(i));
    req.mutable_ttl()->set_seconds(600);
    absl::StatusOr<sessiontoken::v1::SignResponse> r = (*c)->Sign(req);
    if (!r.ok()) {
      std::fprintf(stderr, "call %d: %s\n", i, r.status().ToString().c_str());
      return 1;
    }
    key_ids.insert(KeyIdOf(r->token()));
    std::printf("%s\n", r->token().c_str());
  }
  return 0;
}
