// sessiontoken: the command-line client (sign, verify, keys list, keys rotate, health).
// Exit codes: 0 success / token VALID, 1 token not valid or server not serving,
// 2 usage error, 3 RPC or connection error.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/cpp/client.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "Server address (host:port)");
ABSL_FLAG(std::string, keyring, "default", "Keyring name");
ABSL_FLAG(std::string, audience, "", "Audience/purpose bound into the token");
ABSL_FLAG(absl::Duration, ttl, absl::Hours(1), "Token lifetime for sign (e.g. 30m, 24h)");
ABSL_FLAG(std::string, payload, "", "sign: payload text");
ABSL_FLAG(std::string, payload_file, "", "sign: read the payload from this file ('-' = stdin)");
ABSL_FLAG(std::string, token, "", "verify: the token (or give it as an argument, '-' = stdin)");
ABSL_FLAG(bool, json, false,
          "Print the response as JSON (protobuf JSON mapping with proto field names)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "Deadline of each call");

namespace sessiontoken {
namespace {

constexpr int kExitOk = 0, kExitInvalid = 1, kExitUsage = 2, kExitRpc = 3;

constexpr char kUsage[] =
    "sessiontoken: command-line client of sessiontoken-server.\n"
    "  sessiontoken [--server=H:P] [--keyring=K] sign --payload=TEXT [--ttl=1h] [--audience=A]\n"
    "  sessiontoken [--server=H:P] [--keyring=K] verify TOKEN [--audience=A]\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keys list\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keys rotate\n"
    "  sessiontoken [--server=H:P] health\n"
    "Add --json for machine-readable output. Exit codes: 0 ok/valid, 1 invalid token or not\n"
    "serving, 2 usage error, 3 RPC error.";

int Usage(absl::string_view msg) {
  std::fprintf(stderr, "sessiontoken: %.*s\n\n%s\n", static_cast<int>(msg.size()), msg.data(),
               kUsage);
  return kExitUsage;
}

int RpcError(const absl::Status& s) {
  std::fprintf(stderr, "sessiontoken: %s: %.*s\n",
               absl::StatusCodeToString(s.code()).c_str(),
               static_cast<int>(s.message().size()), s.message().data());
  return kExitRpc;
}

void PrintJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  std::cout << out << std::endl;
}

std::string FormatTs(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(ts.seconds()),
                          absl::UTCTimeZone());
}

bool ReadAll(const std::string& path, std::string* out) {
  if (path == "-") {
    out->assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

int Sign(client::Client& c) {
  v1::SignRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  req.set_audience(absl::GetFlag(FLAGS_audience));
  const std::string payload_file = absl::GetFlag(FLAGS_payload_file);
  if (!payload_file.empty()) {
    if (!ReadAll(payload_file, req.mutable_payload())) {
      return Usage(absl::StrCat("cannot read --payload_file ", payload_file));
    }
  } else {
    req.set_payload(absl::GetFlag(FLAGS_payload));
  }
  absl::Duration ttl = absl::GetFlag(FLAGS_ttl);
  // Sent exactly (seconds and nanos): the server, not the CLI, decides what it accepts.
  const int64_t seconds = absl::ToInt64Seconds(ttl);
  req.mutable_ttl()->set_seconds(seconds);
  req.mutable_ttl()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(ttl - absl::Seconds(seconds))));
  absl::StatusOr<v1::SignResponse> r = c.Sign(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << r->token() << std::endl;
  }
  return kExitOk;
}

int Verify(client::Client& c, const std::vector<char*>& args) {
  std::string token = absl::GetFlag(FLAGS_token);
  if (args.size() > 2) return Usage("verify takes one token");
  if (args.size() == 2) {
    if (!token.empty()) return Usage("give the token either as an argument or with --token");
    token = args[1];
  }
  if (token == "-") {
    ReadAll("-", &token);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  }
  if (token.empty()) return Usage("verify needs a token");
  v1::VerifyRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  req.set_token(token);
  req.set_audience(absl::GetFlag(FLAGS_audience));
  absl::StatusOr<v1::VerifyResponse> r = c.Verify(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << "result: " << v1::VerifyResponse::Result_Name(r->result()) << "\n";
    if (r->key_id() != 0) std::cout << "key_id: " << r->key_id() << "\n";
    if (r->has_issued_at()) {
      std::cout << "issued_at: " << FormatTs(r->issued_at()) << "\n"
                << "expires_at: " << FormatTs(r->expires_at()) << "\n";
    }
    if (r->result() == v1::VerifyResponse::VALID) {
      std::cout << "refresh_recommended: " << (r->refresh_recommended() ? "true" : "false")
                << "\n"
                << "payload: " << r->payload() << "\n";
    }
    std::cout << std::flush;
  }
  return r->result() == v1::VerifyResponse::VALID ? kExitOk : kExitInvalid;
}

int KeysList(client::Client& c) {
  v1::ListKeysRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  absl::StatusOr<v1::ListKeysResponse> r = c.ListKeys(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
    return kExitOk;
  }
  std::cout << "keyring " << r->keyring() << " (revision " << r->revision() << ")\n";
  std::cout << absl::StrFormat("%-12s %-10s %-12s %s\n", "KEY_ID", "STATE", "ALGORITHM",
                               "CREATED");
  for (const v1::KeyInfo& k : r->keys()) {
    std::cout << absl::StrFormat("%-12u %-10s %-12s %s\n", k.key_id(),
                                 v1::KeyState_Name(k.state()), v1::Algorithm_Name(k.algorithm()),
                                 FormatTs(k.created_at()));
  }
  std::cout << std::flush;
  return kExitOk;
}

int KeysRotate(client::Client& c) {
  v1::RotateRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  absl::StatusOr<v1::RotateResponse> r = c.Rotate(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << "rotated keyring " << req.keyring() << ": new primary key "
              << r->new_key().key_id() << " (previous " << r->previous_primary_key_id()
              << " is now ACTIVE), revision " << r->revision() << std::endl;
  }
  return kExitOk;
}

int Health(client::Client& c) {
  absl::StatusOr<grpc::health::v1::HealthCheckResponse> r = c.Health("");
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(r->status())
              << std::endl;
  }
  return r->status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk : kExitInvalid;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  args.erase(args.begin());  // program name
  if (args.empty()) return Usage("missing command");
  client::ClientOptions opts;
  opts.target = absl::GetFlag(FLAGS_server);
  opts.timeout = absl::GetFlag(FLAGS_timeout);
  absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::New(opts);
  if (!c.ok()) return RpcError(c.status());
  const std::string cmd = args[0];
  if (cmd == "sign" && args.size() == 1) return Sign(**c);
  if (cmd == "verify") return Verify(**c, args);
  if (cmd == "health" && args.size() == 1) return Health(**c);
  if (cmd == "keys" && args.size() == 2) {
    const std::string sub = args[1];
    if (sub == "list") return KeysList(**c);
    if (sub == "rotate") return KeysRotate(**c);
  }
  return Usage(absl::StrCat("unknown command: ", cmd));
}

}  // namespace
}  // namespace sessiontoken

int main(int argc, char** argv) { return sessiontoken::Main(argc, argv); }
