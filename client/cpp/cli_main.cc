// sessiontoken: the command-line client (sign, verify, keys list/usage/rotate..., health).
// Exit codes: 0 success / token VALID, 1 token not valid or server not serving,
// 2 usage error, 3 RPC or connection error.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/cpp/client.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "Server address (host:port)");
ABSL_FLAG(std::string, keyring, "default", "Keyring name");
ABSL_FLAG(std::string, audience, "", "Audience/purpose bound into the token");
ABSL_FLAG(std::string, subject, "",
          "sign: who the session belongs to (e.g. the user id, at most 128 bytes), bound into "
          "the token and shown by verify; revoke: revoke every session of this subject");
ABSL_FLAG(absl::Duration, ttl, absl::Hours(1), "Token lifetime for sign (e.g. 30m, 24h)");
ABSL_FLAG(std::string, payload, "", "sign: payload text");
ABSL_FLAG(std::string, payload_file, "", "sign: read the payload from this file ('-' = stdin)");
ABSL_FLAG(std::string, token, "",
          "verify / revoke: the token (verify: or give it as an argument; '-' = stdin)");
ABSL_FLAG(bool, json, false,
          "Print the response as JSON (protobuf JSON mapping with proto field names)");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "Deadline of each call (default 0: the method's in the shared service config, "
          "proto/sessiontoken/v1/service_config.json)");
ABSL_FLAG(std::string, tls_ca, "", "TLS: CA bundle (PEM) that signed the server certificate");
ABSL_FLAG(std::string, tls_cert, "", "mTLS: client certificate (PEM)");
ABSL_FLAG(std::string, tls_key, "", "mTLS: client private key (PEM)");
ABSL_FLAG(std::string, tls_server_name, "", "TLS: name to check in the server certificate");
ABSL_FLAG(std::string, token_file, "",
          "File holding a bearer API token (or set SESSIONTOKEN_TOKEN); never on argv");
ABSL_FLAG(bool, promote_now, false, "keys rotate: promote at once despite a stage lead time");
ABSL_FLAG(std::string, algorithm, "",
          "keys import / keyrings create / keys rotate: native (HMAC_SHA256) or flask "
          "(HMAC_SHA1_FLASK)");
ABSL_FLAG(std::string, secret_file, "-",
          "keys import: file holding the secret to import ('-' = stdin; never on argv). "
          "One trailing newline is stripped");
ABSL_FLAG(std::string, state, "active", "keys import: active, staged or primary");
ABSL_FLAG(absl::Duration, rotation_period, absl::Seconds(-1),
          "policy set / keyrings create: rotate after this long (0 = manual)");
ABSL_FLAG(absl::Duration, stage_lead_time, absl::Seconds(-1),
          "policy set / keyrings create: STAGED this long before promotion");
ABSL_FLAG(absl::Duration, verify_window, absl::Seconds(-1),
          "policy set / keyrings create: ACTIVE keys verify this long, then are disabled");
ABSL_FLAG(absl::Duration, destroy_after, absl::Seconds(-1),
          "policy set / keyrings create: DISABLED keys are destroyed after this long");
ABSL_FLAG(absl::Duration, max_token_ttl, absl::Seconds(-1),
          "policy set / keyrings create: longest TTL Sign accepts for the keyring");
ABSL_FLAG(absl::Duration, tombstone_retention, absl::Seconds(-1),
          "policy set / keyrings create: DESTROYED keys' tombstones are removed after this "
          "long (0 = the server's default, 720h)");
ABSL_FLAG(std::string, seal_payloads, "",
          "policy set / keyrings create: true = new tokens carry their payload encrypted "
          "(AES-256-GCM), false = in clear; empty = unchanged");

namespace sessiontoken {
namespace {

constexpr int kExitOk = 0, kExitInvalid = 1, kExitUsage = 2, kExitRpc = 3;

constexpr char kUsage[] =
    "sessiontoken: command-line client of sessiontoken-server.\n"
    "  sessiontoken [--server=H:P] [--keyring=K] sign --payload=TEXT [--ttl=1h] [--audience=A] "
    "[--subject=S]\n"
    "  sessiontoken [--server=H:P] [--keyring=K] verify TOKEN [--audience=A]\n"
    "  sessiontoken [--server=H:P] [--keyring=K] revoke --token=TOKEN|- [--audience=A] | "
    "--subject=USER\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keys list\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keys usage\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keys rotate [--promote_now]\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keys promote|disable|enable|destroy KEY_ID\n"
    "  sessiontoken [--server=H:P] keys rewrap   (KEK rotation: reseal every keyring now;\n"
    "      exit 1 while records remain under a previous KEK)\n"
    "  sessiontoken [--server=H:P] backup FILE   (every keyring, sealed; restore with\n"
    "      sessiontoken-restore)\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keys import --algorithm=flask "
    "[--secret_file=PATH|-] [--state=active]\n"
    "  sessiontoken [--server=H:P] keyrings list | keyrings create NAME [policy flags]\n"
    "  sessiontoken [--server=H:P] [--keyring=K] keyrings get\n"
    "  sessiontoken [--server=H:P] [--keyring=K] policy set [--rotation_period=720h] "
    "[--stage_lead_time=0s] [--verify_window=744h] [--destroy_after=0s] [--max_token_ttl=0s] "
    "[--tombstone_retention=0s] [--seal_payloads=true|false]\n"
    "  sessiontoken [--server=H:P] [--keyring=K] batch-sign < payloads (one per line)\n"
    "  sessiontoken [--server=H:P] [--keyring=K] batch-verify < tokens (one per line)\n"
    "  sessiontoken [--server=H:P] health\n"
    "  sessiontoken [--server=H:P] status   (store, replica freshness, announced replicas)\n"
    "Add --json for machine-readable output. Exit codes: 0 ok/valid, 1 invalid token or not\n"
    "serving, 2 usage error, 3 RPC error.";

int Usage(absl::string_view msg) {
  std::fprintf(stderr, "sessiontoken: %.*s\n\n%s\n", static_cast<int>(msg.size()), msg.data(),
               kUsage);
  return kExitUsage;
}

int RpcError(const absl::Status& s) {
  std::fprintf(stderr, "sessiontoken: %s: %.*s\n", absl::StatusCodeToString(s.code()).c_str(),
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

bool ParseAlgorithm(v1::Algorithm* out);

int Sign(client::Client& c) {
  v1::SignRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  req.set_audience(absl::GetFlag(FLAGS_audience));
  req.set_subject(absl::GetFlag(FLAGS_subject));
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
      if (!r->token_id().empty()) std::cout << "token_id: " << r->token_id() << "\n";
      if (!r->subject().empty()) std::cout << "subject: " << r->subject() << "\n";
      std::cout << "refresh_recommended: " << (r->refresh_recommended() ? "true" : "false") << "\n"
                << "payload: " << r->payload() << "\n";
    }
    std::cout << std::flush;
  }
  return r->result() == v1::VerifyResponse::VALID ? kExitOk : kExitInvalid;
}

// Revokes one session (--token, '-' = stdin) or every session of --subject.
int Revoke(client::Client& c) {
  std::string token = absl::GetFlag(FLAGS_token);
  const std::string subject = absl::GetFlag(FLAGS_subject);
  if (token.empty() == subject.empty()) return Usage("revoke needs one of --token or --subject");
  if (token == "-") {
    ReadAll("-", &token);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.empty()) return Usage("revoke: no token on stdin");
  }
  v1::RevokeRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  if (!token.empty()) {
    req.set_token(token);
    req.set_audience(absl::GetFlag(FLAGS_audience));
  } else {
    req.set_subject(subject);
  }
  absl::StatusOr<v1::RevokeResponse> r = c.Revoke(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << "revoked_at: " << FormatTs(r->revoked_at()) << "\n"
              << "drop_after: " << FormatTs(r->drop_after()) << "\n"
              << std::flush;
  }
  return kExitOk;
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
  std::cout << absl::StrFormat("%-12s %-10s %-12s %s\n", "KEY_ID", "STATE", "ALGORITHM", "CREATED");
  for (const v1::KeyInfo& k : r->keys()) {
    std::cout << absl::StrFormat("%-12u %-10s %-12s %s\n", k.key_id(), v1::KeyState_Name(k.state()),
                                 v1::Algorithm_Name(k.algorithm()), FormatTs(k.created_at()));
  }
  std::cout << std::flush;
  return kExitOk;
}

// Per key: tokens verified in the last hour / day and when last, on the replica that answers.
int KeysUsage(client::Client& c) {
  v1::GetKeyUsageRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  absl::StatusOr<v1::GetKeyUsageResponse> r = c.GetKeyUsage(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
    return kExitOk;
  }
  std::cout << "keyring " << r->keyring() << " (revision " << r->revision()
            << "), counted by the answering replica since " << FormatTs(r->counting_since())
            << "\n";
  std::cout << absl::StrFormat("%-12s %-10s %12s %12s %-20s %16s\n", "KEY_ID", "STATE",
                               "VERIFIED_1H", "VERIFIED_24H", "LAST_VERIFIED", "DISABLED_HITS_24H");
  for (const v1::KeyUsage& k : r->keys()) {
    std::cout << absl::StrFormat("%-12u %-10s %12u %12u %-20s %16u\n", k.key_id(),
                                 v1::KeyState_Name(k.state()), k.verified_last_hour(),
                                 k.verified_last_day(),
                                 k.has_last_verified_at() ? FormatTs(k.last_verified_at()) : "-",
                                 k.rejected_disabled_last_day());
  }
  std::cout << std::flush;
  return kExitOk;
}

int KeysRotate(client::Client& c) {
  v1::RotateRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  req.set_promote_now(absl::GetFlag(FLAGS_promote_now));
  v1::Algorithm alg;
  if (!ParseAlgorithm(&alg)) return Usage("--algorithm must be native or flask");
  req.set_algorithm(alg);
  absl::StatusOr<v1::RotateResponse> r = c.Rotate(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    if (r->new_key().state() == v1::PRIMARY) {
      std::cout << "rotated keyring " << req.keyring() << ": new primary key "
                << r->new_key().key_id() << " (previous " << r->previous_primary_key_id()
                << " is now ACTIVE), revision " << r->revision() << std::endl;
    } else {
      std::cout << "rotated keyring " << req.keyring() << ": staged key " << r->new_key().key_id()
                << " (promoted after the stage lead time; primary "
                << "is still " << r->previous_primary_key_id() << "), revision " << r->revision()
                << std::endl;
    }
  }
  return kExitOk;
}

// Reseals every keyring with the server's current KEK; exit 1 while any record remains
// under another KEK (scripts repeat it until 0).
int KeysRewrap(client::Client& c) {
  absl::StatusOr<v1::RewrapKeyringsResponse> r = c.RewrapKeyrings();
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << "KEK " << r->kek_fingerprint() << ": resealed " << r->rewrapped() << " of "
              << r->keyrings() << " keyrings and " << r->revocation_records_rewrapped() << " of "
              << r->revocation_records() << " revocation records; " << r->remaining_count()
              << " records remain under another KEK\n";
    for (const std::string& line : r->remaining()) std::cout << "  " << line << "\n";
    std::cout << std::flush;
  }
  return r->remaining_count() == 0 ? kExitOk : kExitInvalid;
}

// Writes the server's backup to `path` (0600, written in full then renamed into place).
int Backup(client::Client& c, const std::string& path) {
  absl::StatusOr<v1::ExportBackupResponse> r = c.ExportBackup();
  if (!r.ok()) return RpcError(r.status());
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < r->backup().size();) {
    ssize_t n = ::write(fd, r->backup().data() + done, r->backup().size() - done);
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  ok = ok && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    std::fprintf(stderr, "sessiontoken: cannot write %s\n", path.c_str());
    return kExitRpc;
  }
  r->clear_backup();
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << "wrote " << r->keyrings() << " keyrings (" << r->revocation_records()
              << " revocation records) to " << path << " (sha256 " << r->sha256()
              << "; sealed with KEK " << absl::StrJoin(r->kek_fingerprints(), ", ") << ")"
              << std::endl;
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

int Status(client::Client& c) {
  absl::StatusOr<v1::ServerStatus> r = c.GetServerStatus();
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
    return kExitOk;
  }
  std::cout << "store: " << r->store() << "\nready: " << (r->ready() ? "yes" : "no") << "\n";
  if (r->store() == "etcd") {
    std::cout << "replica: " << r->replica_id()
              << "\nlease: " << (r->lease_live() ? "live" : "NOT CONFIRMED (may be behind)")
              << "\nwatch: " << (r->watch_connected() ? "connected" : "disconnected")
              << "\nloaded revision: " << r->loaded_revision() << "\nstaleness: "
              << (r->has_staleness()
                      ? absl::FormatDuration(absl::Seconds(r->staleness().seconds()) +
                                             absl::Nanoseconds(r->staleness().nanos()))
                      : std::string("unknown"))
              << "\nfull loads: " << r->full_loads() << ", watch restarts: " << r->watch_restarts()
              << "\nannounced replicas:\n";
    for (const auto& rep : r->replicas()) {
      std::cout << "  " << rep.replica_id() << " loaded revision " << rep.loaded_revision() << "\n";
    }
  }
  std::cout << std::flush;
  return kExitOk;
}

void PrintKeyring(const v1::KeyringInfo& k) {
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(k);
    return;
  }
  std::cout << "keyring " << k.name() << " (revision " << k.revision() << ")\n";
  const v1::KeyringPolicy& p = k.policy();
  std::cout << absl::StrFormat(
      "policy: rotation_period=%ds stage_lead_time=%ds verify_window=%ds destroy_after=%ds "
      "max_token_ttl=%ds tombstone_retention=%ds seal_payloads=%s\n",
      p.rotation_period().seconds(), p.stage_lead_time().seconds(), p.verify_window().seconds(),
      p.destroy_after().seconds(), p.max_token_ttl().seconds(), p.tombstone_retention().seconds(),
      p.seal_payloads() ? "true" : "false");
  std::cout << absl::StrFormat("%-12s %-10s %-16s %-21s %s\n", "KEY_ID", "STATE", "ALGORITHM",
                               "CREATED", "STATE_CHANGED");
  for (const v1::KeyInfo& key : k.keys()) {
    std::cout << absl::StrFormat("%-12u %-10s %-16s %-21s %s\n", key.key_id(),
                                 v1::KeyState_Name(key.state()),
                                 v1::Algorithm_Name(key.algorithm()), FormatTs(key.created_at()),
                                 FormatTs(key.state_changed_at()));
  }
  std::cout << std::flush;
}

int KeyringReply(const absl::StatusOr<v1::KeyringInfo>& r) {
  if (!r.ok()) return RpcError(r.status());
  PrintKeyring(*r);
  return kExitOk;
}

// Parses --algorithm; ALGORITHM_UNSPECIFIED when empty.
bool ParseAlgorithm(v1::Algorithm* out) {
  const std::string a = absl::GetFlag(FLAGS_algorithm);
  if (a.empty())
    *out = v1::ALGORITHM_UNSPECIFIED;
  else if (a == "native" || a == "HMAC_SHA256")
    *out = v1::HMAC_SHA256;
  else if (a == "flask" || a == "HMAC_SHA1_FLASK")
    *out = v1::HMAC_SHA1_FLASK;
  else
    return false;
  return true;
}

// Applies the policy flags that were given (>= 0, or a non-empty --seal_payloads) onto *p.
// False when --seal_payloads is neither true nor false.
bool ApplyPolicyFlags(v1::KeyringPolicy* p) {
  struct {
    absl::Flag<absl::Duration>* flag;
    google::protobuf::Duration* field;
  } fields[] = {{&FLAGS_rotation_period, p->mutable_rotation_period()},
                {&FLAGS_stage_lead_time, p->mutable_stage_lead_time()},
                {&FLAGS_verify_window, p->mutable_verify_window()},
                {&FLAGS_destroy_after, p->mutable_destroy_after()},
                {&FLAGS_max_token_ttl, p->mutable_max_token_ttl()},
                {&FLAGS_tombstone_retention, p->mutable_tombstone_retention()}};
  for (const auto& f : fields) {
    absl::Duration d = absl::GetFlag(*f.flag);
    if (d >= absl::ZeroDuration()) f.field->set_seconds(absl::ToInt64Seconds(d));
  }
  const std::string seal = absl::GetFlag(FLAGS_seal_payloads);
  if (seal.empty()) return true;
  if (seal != "true" && seal != "false") return false;
  p->set_seal_payloads(seal == "true");
  return true;
}

int KeyCommand(client::Client& c, const std::string& sub, const std::vector<char*>& args) {
  if (args.size() != 3) return Usage(absl::StrCat("keys ", sub, " takes one KEY_ID"));
  uint32_t id = 0;
  if (!absl::SimpleAtoi(args[2], &id) || id == 0) return Usage("KEY_ID must be a number");
  v1::KeyRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  req.set_key_id(id);
  if (sub == "promote") return KeyringReply(c.PromoteKey(req));
  if (sub == "disable") return KeyringReply(c.DisableKey(req));
  if (sub == "enable") return KeyringReply(c.EnableKey(req));
  return KeyringReply(c.DestroyKey(req));
}

int KeysImport(client::Client& c) {
  v1::ImportKeyRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  v1::Algorithm alg;
  if (!ParseAlgorithm(&alg) || alg == v1::ALGORITHM_UNSPECIFIED) {
    return Usage("keys import needs --algorithm=flask or --algorithm=native");
  }
  req.set_algorithm(alg);
  const std::string state = absl::GetFlag(FLAGS_state);
  if (state == "active")
    req.set_state(v1::ACTIVE);
  else if (state == "staged")
    req.set_state(v1::STAGED);
  else if (state == "primary")
    req.set_state(v1::PRIMARY);
  else
    return Usage("--state must be active, staged or primary");
  const std::string path = absl::GetFlag(FLAGS_secret_file);
  if (!ReadAll(path, req.mutable_secret())) return Usage(absl::StrCat("cannot read ", path));
  std::string* secret = req.mutable_secret();
  if (!secret->empty() && secret->back() == '\n') secret->pop_back();
  if (!secret->empty() && secret->back() == '\r') secret->pop_back();
  absl::StatusOr<v1::ImportKeyResponse> r = c.ImportKey(req);
  std::fill(secret->begin(), secret->end(), '\0');
  if (!r.ok()) return RpcError(r.status());
  // A weak secret was imported all the same (cookies signed with it exist): say so loudly,
  // on stderr, also with --json (whose output carries it as "warning" too).
  if (!r->warning().empty()) std::cerr << "WARNING: " << r->warning() << std::endl;
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    std::cout << "imported key " << r->key().key_id() << " (" << v1::KeyState_Name(r->key().state())
              << ", " << v1::Algorithm_Name(r->key().algorithm()) << ") into keyring "
              << req.keyring() << ", revision " << r->revision() << std::endl;
  }
  return kExitOk;
}

int Keyrings(client::Client& c, const std::vector<char*>& args) {
  const std::string sub = args.size() >= 2 ? args[1] : "";
  if (sub == "list" && args.size() == 2) {
    absl::StatusOr<v1::ListKeyringsResponse> r = c.ListKeyrings({});
    if (!r.ok()) return RpcError(r.status());
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(*r);
      return kExitOk;
    }
    std::cout << absl::StrFormat("%-32s %-10s %-12s %s\n", "KEYRING", "REVISION", "PRIMARY",
                                 "KEYS");
    for (const auto& e : r->keyrings()) {
      std::cout << absl::StrFormat("%-32s %-10d %-12u %d\n", e.name(), e.revision(),
                                   e.primary_key_id(), e.key_count());
    }
    std::cout << std::flush;
    return kExitOk;
  }
  if (sub == "create" && args.size() == 3) {
    v1::CreateKeyringRequest req;
    req.set_name(args[2]);
    v1::Algorithm alg;
    if (!ParseAlgorithm(&alg)) return Usage("--algorithm must be native or flask");
    req.set_algorithm(alg);
    if (!ApplyPolicyFlags(req.mutable_policy())) {
      return Usage("--seal_payloads must be true or false");
    }
    return KeyringReply(c.CreateKeyring(req));
  }
  if (sub == "get" && args.size() == 2) {
    v1::GetKeyringRequest req;
    req.set_keyring(absl::GetFlag(FLAGS_keyring));
    return KeyringReply(c.GetKeyring(req));
  }
  return Usage("keyrings list | keyrings create NAME | keyrings get");
}

int PolicySet(client::Client& c) {
  v1::GetKeyringRequest get;
  get.set_keyring(absl::GetFlag(FLAGS_keyring));
  absl::StatusOr<v1::KeyringInfo> cur = c.GetKeyring(get);
  if (!cur.ok()) return RpcError(cur.status());
  v1::SetPolicyRequest req;
  req.set_keyring(get.keyring());
  *req.mutable_policy() = cur->policy();
  if (!ApplyPolicyFlags(req.mutable_policy()))
    return Usage("--seal_payloads must be true or false");
  return KeyringReply(c.SetPolicy(req));
}

std::vector<std::string> StdinLines() {
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

int BatchSign(client::Client& c) {
  v1::BatchSignRequest req;
  for (const std::string& payload : StdinLines()) {
    v1::SignRequest* item = req.add_items();
    item->set_keyring(absl::GetFlag(FLAGS_keyring));
    item->set_audience(absl::GetFlag(FLAGS_audience));
    item->set_payload(payload);
    item->mutable_ttl()->set_seconds(absl::ToInt64Seconds(absl::GetFlag(FLAGS_ttl)));
  }
  absl::StatusOr<v1::BatchSignResponse> r = c.BatchSign(req);
  if (!r.ok()) return RpcError(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    for (const auto& item : r->items()) {
      std::cout << (item.code() == 0 ? item.response().token()
                                     : absl::StrCat("ERROR ", item.code(), " ", item.message()))
                << "\n";
    }
    std::cout << std::flush;
  }
  for (const auto& item : r->items()) {
    if (item.code() != 0) return kExitInvalid;
  }
  return kExitOk;
}

int BatchVerify(client::Client& c) {
  v1::BatchVerifyRequest req;
  for (const std::string& token : StdinLines()) {
    v1::VerifyRequest* item = req.add_items();
    item->set_keyring(absl::GetFlag(FLAGS_keyring));
    item->set_audience(absl::GetFlag(FLAGS_audience));
    item->set_token(token);
  }
  absl::StatusOr<v1::BatchVerifyResponse> r = c.BatchVerify(req);
  if (!r.ok()) return RpcError(r.status());
  bool all_valid = true;
  for (const auto& item : r->items()) {
    all_valid =
        all_valid && item.code() == 0 && item.response().result() == v1::VerifyResponse::VALID;
  }
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*r);
  } else {
    for (const auto& item : r->items()) {
      if (item.code() != 0) {
        std::cout << "ERROR " << item.code() << " " << item.message() << "\n";
      } else {
        std::cout << v1::VerifyResponse::Result_Name(item.response().result()) << " "
                  << item.response().key_id()
                  << (item.response().refresh_recommended() ? " refresh" : "") << "\n";
      }
    }
    std::cout << std::flush;
  }
  return all_valid ? kExitOk : kExitInvalid;
}

// Runs one command (args[0] and its operands) against the server; returns the exit code.
int Run(client::Client& c, const std::vector<char*>& args) {
  const std::string cmd = args[0];
  if (cmd == "sign" && args.size() == 1) return Sign(c);
  if (cmd == "verify") return Verify(c, args);
  if (cmd == "revoke" && args.size() == 1) return Revoke(c);
  if (cmd == "health" && args.size() == 1) return Health(c);
  if (cmd == "status" && args.size() == 1) return Status(c);
  if (cmd == "keys" && args.size() >= 2) {
    const std::string sub = args[1];
    if (sub == "list" && args.size() == 2) return KeysList(c);
    if (sub == "usage" && args.size() == 2) return KeysUsage(c);
    if (sub == "rotate" && args.size() == 2) return KeysRotate(c);
    if (sub == "rewrap" && args.size() == 2) return KeysRewrap(c);
    if (sub == "import" && args.size() == 2) return KeysImport(c);
    if (sub == "promote" || sub == "disable" || sub == "enable" || sub == "destroy") {
      return KeyCommand(c, sub, args);
    }
  }
  if (cmd == "keyrings") return Keyrings(c, args);
  if (cmd == "backup" && args.size() == 2) return Backup(c, args[1]);
  if (cmd == "policy" && args.size() == 2 && std::string(args[1]) == "set") return PolicySet(c);
  if (cmd == "batch-sign" && args.size() == 1) return BatchSign(c);
  if (cmd == "batch-verify" && args.size() == 1) return BatchVerify(c);
  return Usage(absl::StrCat("unknown command: ", cmd));
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  args.erase(args.begin());  // program name
  if (args.empty()) return Usage("missing command");
  client::ClientOptions opts;
  opts.target = absl::GetFlag(FLAGS_server);
  opts.timeout = absl::GetFlag(FLAGS_timeout);
  opts.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  opts.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  opts.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  opts.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    if (!ReadAll(path, &opts.bearer_token)) return Usage(absl::StrCat("cannot read ", path));
    while (!opts.bearer_token.empty() &&
           (opts.bearer_token.back() == '\n' || opts.bearer_token.back() == '\r')) {
      opts.bearer_token.pop_back();
    }
  } else if (const char* t = std::getenv("SESSIONTOKEN_TOKEN"); t != nullptr) {
    opts.bearer_token = t;
  }
  opts.max_receive_message_bytes = 1 << 30;  // a backup holds every keyring
  absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::New(opts);
  if (!c.ok()) return RpcError(c.status());
  const int code = Run(**c, args);
  // The answer is out (and every file a command wrote is closed): end here, without tearing
  // down the channel and the static objects while gRPC's own threads may still be at work on
  // them. A CLI call under CI load once printed its answer and then died of SIGSEGV (exit
  // 139); gRPC 1.51 has known exit-time races of this kind.
  std::cout.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace
}  // namespace sessiontoken

int main(int argc, char** argv) {
  // A crash prints where it happened (function names only: no arguments, no memory), then
  // goes on to the previous handler (the default's exit status; a sanitizer's report).
  absl::InitializeSymbolizer(argv[0]);
  absl::FailureSignalHandlerOptions crash;
  crash.call_previous_handler = true;
  absl::InstallFailureSignalHandler(crash);
  return sessiontoken::Main(argc, argv);
}
