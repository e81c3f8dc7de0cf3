// balancing_probe TARGET COUNT: signs COUNT payloads through one sessiontoken::client::Client
// on TARGET and prints each token on its own line, so that client_balancing_test.py can tell
// which server signed which call (the C++ client's channel and service config, as the CLI and
// C++ frontends use them).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "client/cpp/client.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: balancing_probe TARGET COUNT\n");
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
  for (int i = 0; i < count; ++i) {
    sessiontoken::v1::SignRequest req;
    req.set_keyring("default");
    req.set_payload("probe " + std::to_string(i));
    req.mutable_ttl()->set_seconds(600);
    absl::StatusOr<sessiontoken::v1::SignResponse> r = (*c)->Sign(req);
    if (!r.ok()) {
      std::fprintf(stderr, "call %d: %s\n", i, r.status().ToString().c_str());
      return 1;
    }
    std::printf("%s\n", r->token().c_str());
  }
  return 0;
}
