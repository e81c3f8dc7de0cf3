// ha_probe: how fast a rotation reaches every replica sharing one etcd store (make bench).
//
//   ha_probe --targets=127.0.0.1:A,127.0.0.1:B,127.0.0.1:C [--rotations=40]
//            [--keyring=bench-ha] [--poll_interval=1ms] [--timeout=15s]
//
// Creates the keyring (manual rotation, no stage lead time), then per rotation: calls
// Rotate on one replica (in turn), which stages a new key, and polls ListKeys on every
// replica (one thread each) until it lists the new key and then until it serves it as
// primary (the replicas' schedulers promote it once every replica has loaded it). The first
// replica seen with the new primary signs a token at once, and the two others verify it
// at once: anything but VALID is a false rejection. Prints one JSON object on stdout:
//   stage_visible_ms[i]   Rotate's return -> the last replica lists the new key
//   primary_spread_ms[i]  the first replica serving the new primary -> the last one
//   rotate_to_primary_ms[i]  Rotate's return -> every replica serves it (bounded by the
//                         replicas' --scheduler_interval)
// and the cross-replica verification counts. Polling adds up to --poll_interval.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sessiontoken/v1/admin.grpc.pb.h"
#include "sessiontoken/v1/tokens.grpc.pb.h"

ABSL_FLAG(std::vector<std::string>, targets, {},
          "host:port of each replica (loopback only), comma-separated; at least 2");
ABSL_FLAG(int, rotations, 40, "Rotations to time");
ABSL_FLAG(std::string, keyring, "bench-ha", "Keyring to create (or reuse) and rotate");
ABSL_FLAG(absl::Duration, poll_interval, absl::Milliseconds(1), "Pause between two polls");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(15),
          "Longest wait for one rotation to reach every replica");

namespace {

namespace v1 = sessiontoken::v1;

bool IsLoopbackTarget(const std::string& t) {
  return t.rfind("127.", 0) == 0 || t.rfind("localhost:", 0) == 0 || t.rfind("[::1]:", 0) == 0;
}

struct Replica {
  std::string target;
  std::unique_ptr<v1::KeyAdmin::Stub> admin;
  std::unique_ptr<v1::SessionTokens::Stub> tokens;
};

void Deadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

// What one poller saw of one rotation (absl::InfiniteFuture(): not seen).
struct Seen {
  absl::Time listed = absl::InfiniteFuture();
  absl::Time primary = absl::InfiniteFuture();
  std::string error;
};

// The cross-replica check of every rotation: a token signed by the first replica to serve
// the new primary, verified on each other replica at once.
struct CrossCheck {
  std::mutex mu;
  int64_t checked = 0;
  int64_t valid = 0;
  std::string first_problem;
  void Record(const std::string& problem) {
    std::lock_guard<std::mutex> lock(mu);
    ++checked;
    if (problem.empty()) {
      ++valid;
    } else if (first_problem.empty()) {
      first_problem = problem;
    }
  }
};

// Signs on replicas[first] and verifies on every other replica once; records each result.
void SignHereVerifyElsewhere(std::vector<Replica>& replicas, size_t first, uint32_t key_id,
                             const std::string& keyring, CrossCheck* check) {
  v1::SignRequest sreq;
  sreq.set_keyring(keyring);
  sreq.set_payload("{\"user\":42}");
  sreq.set_audience("web");
  sreq.mutable_ttl()->set_seconds(600);
  v1::SignResponse sresp;
  grpc::ClientContext sctx;
  Deadline(&sctx);
  grpc::Status s = replicas[first].tokens->Sign(&sctx, sreq, &sresp);
  if (!s.ok() || sresp.key_id() != key_id) {
    check->Record(absl::StrCat(
        "sign on ", replicas[first].target, ": ",
        s.ok() ? absl::StrCat("key ", sresp.key_id(), ", not ", key_id) : s.error_message()));
    return;
  }
  for (size_t j = 0; j < replicas.size(); ++j) {
    if (j == first) continue;
    v1::VerifyRequest vreq;
    vreq.set_keyring(keyring);
    vreq.set_token(sresp.token());
    vreq.set_audience("web");
    v1::VerifyResponse vresp;
    grpc::ClientContext vctx;
    Deadline(&vctx);
    grpc::Status v = replicas[j].tokens->Verify(&vctx, vreq, &vresp);
    if (v.ok() && vresp.result() == v1::VerifyResponse::VALID) {
      check->Record("");
    } else {
      check->Record(absl::StrCat("verify on ", replicas[j].target, " of a token signed with key ",
                                 key_id, " by ", replicas[first].target, ": ",
                                 v.ok() ? v1::VerifyResponse::Result_Name(vresp.result())
                                        : absl::StrCat(v.error_code(), " ", v.error_message())));
    }
  }
}

// Polls replicas[i] until it serves `key_id` as primary (or the deadline passes).
void Poll(std::vector<Replica>& replicas, size_t i, uint32_t key_id, const std::string& keyring,
          absl::Time deadline, std::atomic<bool>* first_taken, CrossCheck* check, Seen* seen) {
  const absl::Duration pause = absl::GetFlag(FLAGS_poll_interval);
  v1::ListKeysRequest req;
  req.set_keyring(keyring);
  while (absl::Now() < deadline) {
    v1::ListKeysResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx);
    grpc::Status s = replicas[i].admin->ListKeys(&ctx, req, &resp);
    const absl::Time now = absl::Now();
    if (s.ok()) {
      const bool listed = std::any_of(resp.keys().begin(), resp.keys().end(),
                                      [&](const v1::KeyInfo& k) { return k.key_id() == key_id; });
      if (listed && seen->listed == absl::InfiniteFuture()) seen->listed = now;
      if (resp.primary_key_id() == key_id) {
        seen->primary = now;
        if (!first_taken->exchange(true)) {
          SignHereVerifyElsewhere(replicas, i, key_id, keyring, check);
        }
        return;
      }
    } else {
      seen->error = absl::StrCat(replicas[i].target, ": ", s.error_message());
    }
    absl::SleepFor(pause);
  }
  if (seen->error.empty()) {
    seen->error = absl::StrCat(replicas[i].target, " did not serve key ", key_id, " as primary");
  }
}

double Ms(absl::Duration d) {
  return absl::ToDoubleMilliseconds(std::max(d, absl::ZeroDuration()));
}

struct Results {
  std::vector<double> stage_visible_ms, primary_spread_ms, rotate_to_primary_ms;
  std::string error;
};

// One rotation on replicas[by]; appends its figures to *out. False when it failed.
bool TimeOneRotation(std::vector<Replica>& replicas, size_t by, const std::string& keyring,
                     CrossCheck* check, Results* out) {
  v1::RotateRequest req;
  req.set_keyring(keyring);
  v1::RotateResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = replicas[by].admin->Rotate(&ctx, req, &resp);
  const absl::Time returned = absl::Now();
  if (!s.ok()) {
    out->error = absl::StrCat("Rotate on ", replicas[by].target, ": ", s.error_message());
    return false;
  }
  const uint32_t key_id = resp.new_key().key_id();
  std::vector<Seen> seen(replicas.size());
  std::atomic<bool> first_taken{false};
  const absl::Time deadline = returned + absl::GetFlag(FLAGS_timeout);
  std::vector<std::thread> pollers;
  for (size_t i = 0; i < replicas.size(); ++i) {
    pollers.emplace_back(Poll, std::ref(replicas), i, key_id, std::cref(keyring), deadline,
                         &first_taken, check, &seen[i]);
  }
  for (std::thread& t : pollers) t.join();
  absl::Time last_listed = absl::InfinitePast(), first_primary = absl::InfiniteFuture(),
             last_primary = absl::InfinitePast();
  for (const Seen& x : seen) {
    if (x.primary == absl::InfiniteFuture()) {
      out->error = x.error;
      return false;
    }
    last_listed = std::max(last_listed, std::min(x.listed, x.primary));
    first_primary = std::min(first_primary, x.primary);
    last_primary = std::max(last_primary, x.primary);
  }
  out->stage_visible_ms.push_back(Ms(last_listed - returned));
  out->primary_spread_ms.push_back(Ms(last_primary - first_primary));
  out->rotate_to_primary_ms.push_back(Ms(last_primary - returned));
  return true;
}

// Creates the keyring on replicas[0] (or finds it) and waits until every replica has it.
bool PrepareKeyring(std::vector<Replica>& replicas, const std::string& keyring,
                    std::string* error) {
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);
  bool created = false;
  size_t ready = 0;
  while (absl::Now() < deadline && ready < replicas.size()) {
    if (!created) {
      v1::CreateKeyringRequest req;
      req.set_name(keyring);
      v1::KeyringInfo info;
      grpc::ClientContext ctx;
      Deadline(&ctx);
      grpc::Status s = replicas[0].admin->CreateKeyring(&ctx, req, &info);
      created = s.ok() || s.error_code() == grpc::StatusCode::ALREADY_EXISTS;
      *error = s.error_message();
    } else {
      v1::ListKeysRequest req;
      req.set_keyring(keyring);
      v1::ListKeysResponse resp;
      grpc::ClientContext ctx;
      Deadline(&ctx);
      grpc::Status s = replicas[ready].admin->ListKeys(&ctx, req, &resp);
      if (s.ok()) ++ready;
      *error = s.error_message();
    }
    if (ready < replicas.size()) absl::SleepFor(absl::Milliseconds(20));
  }
  if (ready == replicas.size()) return true;
  *error = absl::StrCat("keyring ", keyring, " not on every replica: ", *error);
  return false;
}

std::string JsonArray(const std::vector<double>& xs) {
  return absl::StrCat("[",
                      absl::StrJoin(xs, ",",
                                    [](std::string* out, double x) {
                                      absl::StrAppend(out, absl::StrFormat("%.3f", x));
                                    }),
                      "]");
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("ha_probe --targets=127.0.0.1:A,127.0.0.1:B,127.0.0.1:C");
  absl::ParseCommandLine(argc, argv);
  std::vector<Replica> replicas;
  for (const std::string& t : absl::GetFlag(FLAGS_targets)) {
    if (!IsLoopbackTarget(t)) {
      std::fprintf(stderr, "ha_probe: targets must be loopback addresses (got \"%s\")\n",
                   t.c_str());
      return 2;
    }
    std::shared_ptr<grpc::Channel> ch = grpc::CreateChannel(t, grpc::InsecureChannelCredentials());
    replicas.push_back({t, v1::KeyAdmin::NewStub(ch), v1::SessionTokens::NewStub(ch)});
  }
  if (replicas.size() < 2) {
    std::fprintf(stderr, "ha_probe: --targets needs at least 2 replicas\n");
    return 2;
  }
  const std::string keyring = absl::GetFlag(FLAGS_keyring);
  Results results;
  CrossCheck check;
  if (PrepareKeyring(replicas, keyring, &results.error)) {
    results.error.clear();
    const int n = absl::GetFlag(FLAGS_rotations);
    for (int i = 0; i < n; ++i) {
      if (!TimeOneRotation(replicas, i % replicas.size(), keyring, &check, &results)) break;
    }
  }
  std::printf(
      "{\"replicas\":%zu,\"rotations\":%zu,\"stage_visible_ms\":%s,\"primary_spread_ms\":%s,"
      "\"rotate_to_primary_ms\":%s,\"cross_checked\":%lld,\"cross_valid\":%lld,"
      "\"cross_first_problem\":%s,\"error\":%s}\n",
      replicas.size(), results.primary_spread_ms.size(),
      JsonArray(results.stage_visible_ms).c_str(), JsonArray(results.primary_spread_ms).c_str(),
      JsonArray(results.rotate_to_primary_ms).c_str(), static_cast<long long>(check.checked),
      static_cast<long long>(check.valid), JsonString(check.first_problem).c_str(),
      JsonString(results.error).c_str());
  return results.error.empty() && check.checked == check.valid ? 0 : 1;
}
