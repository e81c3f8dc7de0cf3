// ha_probe: the client side of the replicas test (ha_replicas_test.py). It polls one
// keyring on every replica tightly and reports when each replica first shows each key (and
// each state change), and it signs on every replica in turn and verifies each token on the
// other replicas at once, counting every answer. Lines on stdout, one event each; times are
// CLOCK_MONOTONIC nanoseconds (Python's time.monotonic_ns()):
//   KEY r id STATE t      replica r shows key id for the first time
//   STATE r id STATE t    its state changed on replica r
//   DOWN r CODE t / UP r t  replica r stopped / started answering the poller
//   REJECT verifier signer id RESULT t   a definitive non-VALID answer for a fresh token
//   ERROR verifier CODE message          an RPC error that is not "down" or "behind"
//   UNVERIFIED signer id t               no replica said VALID
//   STATS / SUMMARY name=value ...       counters (every second / at the end)
// Commands on stdin: "pause", "resume" (the signing), "stop" (or end of input).
// With --verify_token it only verifies that token on one replica repeatedly:
//   VERIFY first_valid_ms=N answers=NAME:count,... last_error=message
#include <time.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "sessiontoken/v1/admin.grpc.pb.h"
#include "sessiontoken/v1/tokens.grpc.pb.h"

ABSL_FLAG(std::vector<std::string>, targets, {}, "Replicas, host:port,host:port,...");
ABSL_FLAG(std::string, keyring, "ha", "Keyring to poll and sign with");
ABSL_FLAG(absl::Duration, poll_interval, absl::Milliseconds(2), "Pause between polls");
ABSL_FLAG(absl::Duration, call_timeout, absl::Milliseconds(500), "Deadline of each call");
ABSL_FLAG(int32_t, tokens_per_second, 90, "Signing rate over all replicas");
ABSL_FLAG(std::string, verify_token, "",
          "Instead: verify this token on the first target every 5 ms for --verify_for (until "
          "VALID with --until_valid) and print one VERIFY line counting the answers");
ABSL_FLAG(absl::Duration, verify_for, absl::Seconds(1), "With --verify_token: how long");
ABSL_FLAG(bool, until_valid, false, "With --verify_token: stop at the first VALID");

namespace sessiontoken {
namespace {

// One replica's stubs on a channel without retries (every answer is counted as it came)
// that reconnects within ~100 ms when a killed replica comes back on its port.
struct Replica {
  explicit Replica(const std::string& target) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    // The shortest time one connection attempt gets: the 50 ms it had could keep a busy,
    // just restarted replica out of reach for good (as the etcd client's 100 ms did).
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    tokens = v1::SessionTokens::NewStub(channel);
    admin = v1::KeyAdmin::NewStub(channel);
  }
  std::unique_ptr<v1::SessionTokens::Stub> tokens;
  std::unique_ptr<v1::KeyAdmin::Stub> admin;
};

// A call's context with the probe's deadline.
std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_call_timeout)));
  return ctx;
}

absl::Status ToStatus(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

int64_t MonoNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

absl::Mutex out_mu;
void Emit(const std::string& line) {
  absl::MutexLock lock(&out_mu);
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

struct Counters {
  std::atomic<int64_t> tokens{0}, verifications{0}, valid{0}, rejections{0}, behind{0},
      not_ready{0}, down{0}, errors{0}, unverified{0}, sign_failures{0}, retried_elsewhere{0};
  std::string Line() const {
    return absl::StrCat("tokens=", tokens.load(), " verifications=", verifications.load(),
                        " valid=", valid.load(), " rejections=", rejections.load(),
                        " behind=", behind.load(), " not_ready=", not_ready.load(),
                        " down=", down.load(), " errors=", errors.load(),
                        " unverified=", unverified.load(), " sign_failures=", sign_failures.load(),
                        " retried_elsewhere=", retried_elsewhere.load());
  }
};

class Probe {
 public:
  explicit Probe(std::vector<std::unique_ptr<Replica>> clients) : clients_(std::move(clients)) {}

  void Run() {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < clients_.size(); ++i) {
      threads.emplace_back([this, i] { Poll(i); });
      threads.emplace_back([this, i] { Load(i); });
    }
    threads.emplace_back([this] { Stats(); });
    std::string cmd;
    while (std::getline(std::cin, cmd) && cmd != "stop") {
      if (cmd == "pause" || cmd == "resume") {
        absl::MutexLock lock(&mu_);
        paused_ = cmd == "pause";
        if (paused_) {  // answered once no token is in flight
          mu_.Await(absl::Condition(
              +[](int* n) { return *n == 0; }, &in_flight_));
        }
        Emit(absl::StrCat(paused_ ? "PAUSED" : "RESUMED"));
      }
    }
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (std::thread& t : threads) t.join();
    Emit(absl::StrCat("SUMMARY ", counters_.Line()));
  }

 private:
  bool Stopped() {
    absl::MutexLock lock(&mu_);
    return stop_;
  }
  bool SleepFor(absl::Duration d) {  // false once stopped
    absl::MutexLock lock(&mu_);
    return !mu_.AwaitWithTimeout(absl::Condition(&stop_), d);
  }

  // Replica i's view of the keyring: one line per new key and per state change.
  void Poll(size_t i) {
    std::map<uint32_t, int> seen;  // key id -> state
    bool up = true;
    const absl::Duration interval = absl::GetFlag(FLAGS_poll_interval);
    v1::GetKeyringRequest req;
    req.set_keyring(absl::GetFlag(FLAGS_keyring));
    while (SleepFor(interval)) {
      v1::KeyringInfo info;
      const grpc::Status r = clients_[i]->admin->GetKeyring(Context().get(), req, &info);
      const int64_t t = MonoNs();
      if (!r.ok()) {
        if (up) {
          Emit(absl::StrCat("DOWN ", i, " ", absl::StatusCodeToString(ToStatus(r).code()), " ", t));
        }
        up = false;
        continue;
      }
      if (!up) Emit(absl::StrCat("UP ", i, " ", t));
      up = true;
      for (const v1::KeyInfo& k : info.keys()) {
        auto [it, fresh] = seen.try_emplace(k.key_id(), k.state());
        if (!fresh && it->second == k.state()) continue;
        it->second = k.state();
        Emit(absl::StrCat(fresh ? "KEY " : "STATE ", i, " ", k.key_id(), " ",
                          v1::KeyState_Name(k.state()), " ", t));
      }
    }
  }

  // How one verification answered.
  enum class Outcome { kValid, kRejected, kBehind, kNotReady, kDown, kError };
  Outcome Verify(size_t verifier, size_t signer, const v1::SignResponse& signed_token) {
    v1::VerifyRequest req;
    req.set_keyring(absl::GetFlag(FLAGS_keyring));
    req.set_token(signed_token.token());
    v1::VerifyResponse resp;
    const grpc::Status rs = clients_[verifier]->tokens->Verify(Context().get(), req, &resp);
    counters_.verifications++;
    if (rs.ok()) {
      if (resp.result() == v1::VerifyResponse::VALID) {
        counters_.valid++;
        return Outcome::kValid;
      }
      counters_.rejections++;
      Emit(absl::StrCat("REJECT ", verifier, " ", signer, " ", signed_token.key_id(), " ",
                        v1::VerifyResponse::Result_Name(resp.result()), " ", MonoNs()));
      return Outcome::kRejected;
    }
    const absl::Status s = ToStatus(rs);
    if (absl::IsUnavailable(s) && absl::StrContains(s.message(), "catching up")) {
      counters_.behind++;
      return Outcome::kBehind;
    }
    if (absl::IsUnavailable(s) && absl::StrContains(s.message(), "not loaded")) {
      counters_.not_ready++;
      return Outcome::kNotReady;
    }
    if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsCancelled(s)) {
      counters_.down++;
      return Outcome::kDown;
    }
    counters_.errors++;
    Emit(absl::StrCat("ERROR ", verifier, " ", absl::StatusCodeToString(s.code()), " ",
                      s.message()));
    return Outcome::kError;
  }

  // Signs on replica `signer` and verifies on every other replica at once; a token that no
  // other replica accepted is verified on the signer too.
  void OneToken(size_t signer, int64_t n) {
    v1::SignRequest req;
    req.set_keyring(absl::GetFlag(FLAGS_keyring));
    req.set_payload(absl::StrCat("ha-probe ", signer, " ", n));
    req.mutable_ttl()->set_seconds(20);
    auto token = std::make_unique<v1::SignResponse>();
    if (!clients_[signer]->tokens->Sign(Context().get(), req, token.get()).ok()) {
      counters_.sign_failures++;
      return;
    }
    counters_.tokens++;
    std::vector<Outcome> outcomes(clients_.size(), Outcome::kDown);
    std::vector<std::thread> verifiers;
    for (size_t j = 0; j < clients_.size(); ++j) {
      if (j == signer) continue;
      verifiers.emplace_back([&, j] { outcomes[j] = Verify(j, signer, *token); });
    }
    for (std::thread& t : verifiers) t.join();
    bool valid = false, unsure = false;
    for (size_t j = 0; j < clients_.size(); ++j) {
      if (j == signer) continue;
      valid = valid || outcomes[j] == Outcome::kValid;
      unsure = unsure || outcomes[j] != Outcome::kValid;
    }
    if (!valid) {
      counters_.retried_elsewhere++;
      valid = Verify(signer, signer, *token) == Outcome::kValid;
    } else if (unsure) {
      counters_.retried_elsewhere++;  // an UNAVAILABLE answer, and VALID on another replica
    }
    if (!valid) {
      counters_.unverified++;
      Emit(absl::StrCat("UNVERIFIED ", signer, " ", token->key_id(), " ", MonoNs()));
    }
  }

  void Load(size_t signer) {
    const absl::Duration gap = absl::Seconds(1) * static_cast<double>(clients_.size()) /
                               std::max(1, absl::GetFlag(FLAGS_tokens_per_second));
    for (int64_t n = 0; SleepFor(gap); ++n) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Probe* p) ABSL_NO_THREAD_SAFETY_ANALYSIS { return !p->paused_ || p->stop_; },
            this));
        if (stop_) return;
        ++in_flight_;
      }
      OneToken(signer, n);
      absl::MutexLock lock(&mu_);
      --in_flight_;
    }
  }

  void Stats() {
    while (SleepFor(absl::Seconds(1))) Emit(absl::StrCat("STATS ", counters_.Line()));
  }

  std::vector<std::unique_ptr<Replica>> clients_;
  Counters counters_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// The name of one verification's answer: a result, BEHIND/NOT_READY (UNAVAILABLE from a
// replica catching up / not loaded yet), or an RPC code.
std::string AnswerName(const grpc::Status& rs, const v1::VerifyResponse& resp) {
  if (rs.ok()) return v1::VerifyResponse::Result_Name(resp.result());
  const absl::Status s = ToStatus(rs);
  if (absl::IsUnavailable(s) && absl::StrContains(s.message(), "catching up")) return "BEHIND";
  if (absl::IsUnavailable(s) && absl::StrContains(s.message(), "not loaded")) return "NOT_READY";
  return absl::StatusCodeToString(s.code());
}

int VerifyLoop(Replica& replica) {
  v1::VerifyRequest req;
  req.set_keyring(absl::GetFlag(FLAGS_keyring));
  req.set_token(absl::GetFlag(FLAGS_verify_token));
  std::map<std::string, int> answers;
  std::string last_error = "-";
  int64_t first_valid_ms = -1;
  const absl::Time start = absl::Now(), end = start + absl::GetFlag(FLAGS_verify_for);
  while (absl::Now() < end) {
    v1::VerifyResponse resp;
    const grpc::Status rs = replica.tokens->Verify(Context().get(), req, &resp);
    const std::string name = AnswerName(rs, resp);
    ++answers[name];
    if (!rs.ok()) last_error = rs.error_message();
    if (name == "VALID" && first_valid_ms < 0) {
      first_valid_ms = absl::ToInt64Milliseconds(absl::Now() - start);
      if (absl::GetFlag(FLAGS_until_valid)) break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::vector<std::string> parts;
  for (const auto& [name, n] : answers) parts.push_back(absl::StrCat(name, ":", n));
  std::printf("VERIFY first_valid_ms=%lld answers=%s last_error=%s\n",
              static_cast<long long>(first_valid_ms), absl::StrJoin(parts, ",").c_str(),
              last_error.c_str());
  return 0;
}

int Main() {
  std::vector<std::unique_ptr<Replica>> clients;
  for (const std::string& target : absl::GetFlag(FLAGS_targets)) {
    clients.push_back(std::make_unique<Replica>(target));
  }
  if (!absl::GetFlag(FLAGS_verify_token).empty() && !clients.empty()) {
    return VerifyLoop(*clients[0]);
  }
  if (clients.size() < 2) {
    std::fprintf(stderr, "ha_probe: --targets needs at least two replicas\n");
    return 2;
  }
  Probe(std::move(clients)).Run();
  return 0;
}

}  // namespace
}  // namespace sessiontoken

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return sessiontoken::Main();
}
