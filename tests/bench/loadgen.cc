// loadgen: a loopback-only gRPC load generator for sessiontoken-server and the bench's
// floor_server (callback client API).
//
//   loadgen --target=127.0.0.1:PORT --mode=verify [--channels=4 --inflight=32]
//           [--duration=3s --warmup=1s] [--qps=0] [--server_pid=PID]
//
// Modes: sign, verify, mixed (--verify_ratio of calls are Verify, the rest Sign),
// batch_verify (--batch tokens per call), and floor_sign / floor_verify / floor_mixed /
// floor_batch_verify: the floor service's Noop with request and reply sizes equal to the
// serialized sizes of the real messages the mode stands for.
//
// Closed loop (--qps=0): --inflight calls spread over --channels connections, each call
// issuing the next as it completes; reports the maximum throughput. Open loop (--qps>0):
// calls start on a fixed schedule; latency is measured from each call's *scheduled* start,
// so queueing behind a slow server counts (no coordinated omission); at most --inflight
// calls are outstanding.
//
// Prints one JSON object on stdout. With --server_pid it also reports the server's CPU
// time per call and its RSS (sampled every 50 ms during the window, plus VmHWM), from
// /proc/PID/{stat,status}.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "floor.grpc.pb.h"
#include "payload.h"
#include "sessiontoken/v1/tokens.grpc.pb.h"

ABSL_FLAG(std::string, target, "", "host:port of the server; must be a loopback address");
ABSL_FLAG(std::string, mode, "verify",
          "sign | verify | mixed | batch_verify | floor_sign | floor_verify | floor_mixed | "
          "floor_batch_verify");
ABSL_FLAG(int, channels, 4, "Channels (separate TCP connections)");
ABSL_FLAG(int, inflight, 32, "Calls in flight (closed loop) / at most in flight (open loop)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(3), "Measurement window");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Load before the window (not measured)");
ABSL_FLAG(double, qps, 0, "Open loop at this many calls/s; 0 = closed loop (max throughput)");
ABSL_FLAG(int, payload_bytes, 64, "Sign payload size");
ABSL_FLAG(std::string, keyring, "default", "Keyring");
ABSL_FLAG(std::string, audience, "web", "Audience");
ABSL_FLAG(int, batch, 100, "Tokens per BatchVerify call");
ABSL_FLAG(double, verify_ratio, 0.9, "mixed: fraction of calls that are Verify");
ABSL_FLAG(int, tokens, 512, "Distinct tokens signed up front for Verify");
ABSL_FLAG(int, server_pid, 0, "Server process to sample CPU and RSS from (0: none)");

namespace {

using Clock = std::chrono::steady_clock;
using sessiontoken::bench::Floor;
using sessiontoken::bench::NoopRequest;
using sessiontoken::bench::NoopResponse;
namespace v1 = sessiontoken::v1;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Log-linear latency histogram (HdrHistogram-style, ~1.6% resolution), lock-free.
class Histogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = 64 * (kSub / 2) + kSub;

  void Record(int64_t ns) {
    if (ns < 0) ns = 0;
    counts_[Index(static_cast<uint64_t>(ns))].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t Total() const {
    uint64_t n = 0;
    for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
    return n;
  }
  // Non-empty buckets as a JSON array of [index, count] (run_bench.py merges histograms of
  // several runs; bucket i covers the values whose Index() is i).
  std::string ToJson() const {
    std::string out = "[";
    for (int i = 0; i < kBuckets; ++i) {
      const uint64_t c = counts_[i].load(std::memory_order_relaxed);
      if (c == 0) continue;
      if (out.size() > 1) out += ",";
      absl::StrAppend(&out, "[", i, ",", c, "]");
    }
    return out + "]";
  }
  // Value (ns) at quantile q in [0, 1]: the midpoint of the bucket holding it.
  double Quantile(double q) const {
    const uint64_t total = Total();
    if (total == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * total)));
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i].load(std::memory_order_relaxed);
      if (seen >= rank) return Mid(i);
    }
    return Mid(kBuckets - 1);
  }

 private:
  static int Index(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits + 1;
    return shift * (kSub / 2) + static_cast<int>(v >> shift);
  }
  static double Mid(int i) {
    if (i < kSub) return i;
    const int shift = (i - kSub / 2) / (kSub / 2);
    const uint64_t lo = static_cast<uint64_t>(i - shift * (kSub / 2)) << shift;
    return static_cast<double>(lo) + static_cast<double>((uint64_t{1} << shift)) / 2;
  }
  std::atomic<uint64_t> counts_[kBuckets] = {};
};

bool IsLoopbackTarget(const std::string& t) {
  return t.rfind("127.", 0) == 0 || t.rfind("localhost:", 0) == 0 || t.rfind("[::1]:", 0) == 0 ||
         t.rfind("ipv4:127.", 0) == 0 || t.rfind("ipv6:[::1]:", 0) == 0;
}

// ---- /proc sampling of the server ------------------------------------------------------

struct ProcSample {
  double cpu_s = 0;  // utime + stime
  long rss_kib = 0;
  long hwm_kib = 0;
};

ProcSample ReadProc(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  {
    std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    std::getline(f, line);
    // Fields after the ")" of comm: state(3) ... utime(14) stime(15).
    size_t p = line.rfind(')');
    if (p != std::string::npos) {
      std::istringstream in(line.substr(p + 2));
      std::string field;
      unsigned long long ut = 0, st = 0;
      for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) ut = std::stoull(field);
        if (i == 15) st = std::stoull(field);
      }
      s.cpu_s = static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:")
      f >> s.rss_kib;
    else if (key == "VmHWM:")
      f >> s.hwm_kib;
    else
      f.ignore(1 << 16, '\n');
  }
  return s;
}

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---- the load ----------------------------------------------------------------------------

enum class Kind { kSign, kVerify, kBatchVerify, kNoop };

struct Shared {
  std::string mode;
  bool floor = false;
  std::vector<std::unique_ptr<v1::SessionTokens::Stub>> stubs;
  std::vector<std::unique_ptr<Floor::Stub>> floor_stubs;
  v1::SignRequest sign_req;
  std::vector<v1::VerifyRequest> verify_reqs;
  std::vector<v1::BatchVerifyRequest> batch_reqs;
  NoopRequest noop_sign, noop_verify, noop_batch;
  double verify_ratio = 0.9;
  int batch = 100;

  // Measurement window [window_start, window_end) in steady-clock ns; calls whose (scheduled)
  // start falls inside it are measured.
  std::atomic<int64_t> window_start{INT64_MAX};
  std::atomic<int64_t> window_end{INT64_MAX};
  std::atomic<bool> stopping{false};
  std::atomic<int> inflight{0};
  std::atomic<uint64_t> seq{0};

  Histogram hist;       // from each call's scheduled start (open loop) / start (closed)
  Histogram hist_sent;  // from the moment the call was actually started
  std::atomic<uint64_t> calls{0}, items{0}, errors{0}, unimplemented{0};
  std::mutex err_mu;
  std::string first_error;

  // Open loop: free slot indices.
  std::mutex free_mu;
  std::condition_variable free_cv;
  std::vector<int> free_slots;

  void Error(const std::string& e) {
    errors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> l(err_mu);
    if (first_error.empty()) first_error = e;
  }
};

// One call slot: owns the per-call objects of at most one outstanding RPC.
struct Slot {
  Shared* sh = nullptr;
  int index = 0;
  bool open_loop = false;
  std::unique_ptr<grpc::ClientContext> ctx;
  v1::SignResponse sign_resp;
  v1::VerifyResponse verify_resp;
  v1::BatchVerifyResponse batch_resp;
  NoopResponse noop_resp;
  int64_t start_ns = 0;  // scheduled start
  int64_t sent_ns = 0;   // actual start
  Kind kind = Kind::kVerify;

  Kind PickKind(uint64_t n) const {
    const std::string& m = sh->mode;
    if (m == "sign") return Kind::kSign;
    if (m == "verify") return Kind::kVerify;
    if (m == "batch_verify") return Kind::kBatchVerify;
    if (m == "mixed") {
      // Deterministic interleave: of every 1000 calls, verify_ratio*1000 are Verify.
      const uint64_t r = (n * 7919) % 1000;
      return r < static_cast<uint64_t>(sh->verify_ratio * 1000) ? Kind::kVerify : Kind::kSign;
    }
    return Kind::kNoop;
  }

  void Start(int64_t scheduled_ns) {
    const uint64_t n = sh->seq.fetch_add(1, std::memory_order_relaxed);
    start_ns = scheduled_ns;
    sent_ns = NowNs();
    ctx = std::make_unique<grpc::ClientContext>();
    sh->inflight.fetch_add(1, std::memory_order_relaxed);
    const size_t ch =
        static_cast<size_t>(index) % (sh->floor ? sh->floor_stubs.size() : sh->stubs.size());
    kind = PickKind(n);
    auto done = [this](grpc::Status s) { Done(std::move(s)); };
    if (sh->floor) {
      const std::string& m = sh->mode;
      const NoopRequest* req = &sh->noop_verify;
      if (m == "floor_sign") {
        req = &sh->noop_sign;
      } else if (m == "floor_batch_verify") {
        req = &sh->noop_batch;
      } else if (m == "floor_mixed") {
        const uint64_t r = (n * 7919) % 1000;
        req =
            r < static_cast<uint64_t>(sh->verify_ratio * 1000) ? &sh->noop_verify : &sh->noop_sign;
      }
      noop_resp.Clear();
      sh->floor_stubs[ch]->async()->Noop(ctx.get(), req, &noop_resp, std::move(done));
      return;
    }
    switch (kind) {
      case Kind::kSign:
        sign_resp.Clear();
        sh->stubs[ch]->async()->Sign(ctx.get(), &sh->sign_req, &sign_resp, std::move(done));
        break;
      case Kind::kVerify:
        verify_resp.Clear();
        sh->stubs[ch]->async()->Verify(ctx.get(), &sh->verify_reqs[n % sh->verify_reqs.size()],
                                       &verify_resp, std::move(done));
        break;
      case Kind::kBatchVerify:
        batch_resp.Clear();
        sh->stubs[ch]->async()->BatchVerify(ctx.get(), &sh->batch_reqs[n % sh->batch_reqs.size()],
                                            &batch_resp, std::move(done));
        break;
      case Kind::kNoop:
        break;
    }
  }

  void Done(grpc::Status s) {
    const int64_t end = NowNs();
    const bool measured = start_ns >= sh->window_start.load(std::memory_order_relaxed) &&
                          start_ns < sh->window_end.load(std::memory_order_relaxed);
    uint64_t items = 1;
    bool ok = s.ok();
    if (!ok) {
      if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        sh->unimplemented.fetch_add(1, std::memory_order_relaxed);
      }
      sh->Error(absl::StrCat("rpc: ", s.error_code(), " ", s.error_message()));
    } else if (kind == Kind::kVerify && !sh->floor &&
               verify_resp.result() != v1::VerifyResponse::VALID) {
      ok = false;
      sh->Error(
          absl::StrCat("verify result ", v1::VerifyResponse::Result_Name(verify_resp.result())));
    } else if (kind == Kind::kBatchVerify && !sh->floor) {
      items = static_cast<uint64_t>(batch_resp.items_size());
      if (batch_resp.items_size() != sh->batch) {
        ok = false;
        sh->Error(absl::StrCat("batch: ", batch_resp.items_size(), " items"));
      } else {
        for (const auto& it : batch_resp.items()) {
          if (it.code() != 0 || it.response().result() != v1::VerifyResponse::VALID) {
            ok = false;
            sh->Error(absl::StrCat("batch item: code ", it.code(), " ", it.message(), " result ",
                                   it.response().result()));
            break;
          }
        }
      }
    } else if (sh->floor && sh->mode == "floor_batch_verify") {
      items = static_cast<uint64_t>(sh->batch);
    }
    if (measured && ok) {
      sh->hist.Record(end - start_ns);
      sh->hist_sent.Record(end - sent_ns);
      sh->calls.fetch_add(1, std::memory_order_relaxed);
      sh->items.fetch_add(items, std::memory_order_relaxed);
    }
    if (open_loop) {
      ctx.reset();
      {
        std::lock_guard<std::mutex> l(sh->free_mu);
        sh->free_slots.push_back(index);
        sh->inflight.fetch_sub(1, std::memory_order_relaxed);
      }
      sh->free_cv.notify_one();
      return;
    }
    // Closed loop: the next call at once. It is counted in flight before this one stops
    // counting, so the drain in main never sees 0 while a call is about to start. A slot
    // whose call failed at the RPC level stops (a dead server fails calls inline, which
    // would otherwise recurse); the error is reported.
    if (!sh->stopping.load(std::memory_order_acquire) && s.ok()) Start(NowNs());
    sh->inflight.fetch_sub(1, std::memory_order_acq_rel);
  }
};

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, int i) {
  grpc::ChannelArguments args;
  // A separate TCP connection per channel (no shared global subchannel pool).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("sessiontoken.bench.channel_index", i);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

using ::sessiontoken::bench::Payload;

NoopRequest NoopFor(size_t request_bytes, size_t reply_bytes) {
  // Noop's own framing (tags, lengths, reply_size) is a few bytes; size `data` so that
  // the whole request serializes to about request_bytes, and the reply to reply_bytes.
  NoopRequest r;
  r.set_reply_size(static_cast<uint32_t>(reply_bytes > 4 ? reply_bytes - 4 : 0));
  const size_t overhead = 8;
  r.set_data(std::string(request_bytes > overhead ? request_bytes - overhead : 0, 'x'));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("loadgen --target=127.0.0.1:PORT --mode=verify ...");
  absl::ParseCommandLine(argc, argv);
  const std::string target = absl::GetFlag(FLAGS_target);
  if (!IsLoopbackTarget(target)) {
    std::fprintf(stderr, "loadgen: --target must be a loopback address (got \"%s\")\n",
                 target.c_str());
    return 2;
  }
  Shared sh;
  sh.mode = absl::GetFlag(FLAGS_mode);
  sh.floor = sh.mode.rfind("floor_", 0) == 0;
  sh.verify_ratio = absl::GetFlag(FLAGS_verify_ratio);
  sh.batch = absl::GetFlag(FLAGS_batch);
  const std::vector<std::string> modes = {
      "sign",       "verify",       "mixed",       "batch_verify",
      "floor_sign", "floor_verify", "floor_mixed", "floor_batch_verify"};
  if (std::find(modes.begin(), modes.end(), sh.mode) == modes.end()) {
    std::fprintf(stderr, "loadgen: unknown --mode=%s\n", sh.mode.c_str());
    return 2;
  }
  const int nch = std::max(1, absl::GetFlag(FLAGS_channels));
  const int inflight = std::max(1, absl::GetFlag(FLAGS_inflight));
  const double qps = absl::GetFlag(FLAGS_qps);
  const std::string keyring = absl::GetFlag(FLAGS_keyring);
  const std::string audience = absl::GetFlag(FLAGS_audience);
  const std::string payload = Payload(static_cast<size_t>(absl::GetFlag(FLAGS_payload_bytes)));

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < nch; ++i) {
    channels.push_back(MakeChannel(target, i));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(10))) {
      std::fprintf(stderr, "loadgen: cannot connect to %s\n", target.c_str());
      return 1;
    }
    if (sh.floor)
      sh.floor_stubs.push_back(Floor::NewStub(channels.back()));
    else
      sh.stubs.push_back(v1::SessionTokens::NewStub(channels.back()));
  }

  // Requests: representative real messages (a real token from the server when one is
  // reachable; for floor modes a token of the exact native length stands in).
  sh.sign_req.set_keyring(keyring);
  sh.sign_req.set_payload(payload);
  sh.sign_req.set_audience(audience);
  sh.sign_req.mutable_ttl()->set_seconds(3600);
  std::vector<std::string> tokens;
  v1::SignResponse sample_sign_resp;
  if (!sh.floor) {
    const int n = std::max(1, absl::GetFlag(FLAGS_tokens));
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext ctx;
      v1::SignRequest req = sh.sign_req;
      // Distinct payloads: overwrite the first hex digits with the index.
      std::string p = payload;
      std::string idx = absl::StrFormat("%08x", i);
      if (p.size() >= 17) p.replace(9, 8, idx);
      req.set_payload(p);
      v1::SignResponse resp;
      grpc::Status s = sh.stubs[0]->Sign(&ctx, req, &resp);
      if (!s.ok()) {
        std::fprintf(stderr, "loadgen: setup Sign failed: %d %s\n", s.error_code(),
                     s.error_message().c_str());
        return 1;
      }
      tokens.push_back(resp.token());
      if (i == 0) sample_sign_resp = resp;
    }
  } else {
    // A native token has 4 + base64url(56 + payload) characters.
    const size_t body = 56 + payload.size();
    const size_t len = 4 + (body / 3) * 4 + (body % 3 ? body % 3 + 1 : 0);
    tokens.push_back("st1." + std::string(len - 4, 'A'));
    sample_sign_resp.set_token(tokens.back());
    sample_sign_resp.set_key_id(0x9abcdef0u);
    sample_sign_resp.mutable_issued_at()->set_seconds(1760000000);
    sample_sign_resp.mutable_expires_at()->set_seconds(1760003600);
  }
  for (const std::string& t : tokens) {
    v1::VerifyRequest r;
    r.set_keyring(keyring);
    r.set_token(t);
    r.set_audience(audience);
    sh.verify_reqs.push_back(r);
  }
  const int batch = std::max(1, sh.batch);
  for (size_t b = 0; b < 16; ++b) {
    v1::BatchVerifyRequest br;
    for (int i = 0; i < batch; ++i) {
      *br.add_items() = sh.verify_reqs[(b * batch + i) % sh.verify_reqs.size()];
    }
    sh.batch_reqs.push_back(std::move(br));
  }
  // Reply shapes of the real service, for the floor's reply sizes.
  v1::VerifyResponse sample_verify_resp;
  sample_verify_resp.set_result(v1::VerifyResponse::VALID);
  sample_verify_resp.set_payload(payload);
  sample_verify_resp.set_key_id(0x9abcdef0u);
  sample_verify_resp.mutable_issued_at()->set_seconds(1760000000);
  sample_verify_resp.mutable_expires_at()->set_seconds(1760003600);
  v1::BatchVerifyResponse sample_batch_resp;
  for (int i = 0; i < batch; ++i)
    *sample_batch_resp.add_items()->mutable_response() = sample_verify_resp;
  sh.noop_sign = NoopFor(sh.sign_req.ByteSizeLong(), sample_sign_resp.ByteSizeLong());
  sh.noop_verify = NoopFor(sh.verify_reqs[0].ByteSizeLong(), sample_verify_resp.ByteSizeLong());
  sh.noop_batch = NoopFor(sh.batch_reqs[0].ByteSizeLong(), sample_batch_resp.ByteSizeLong());

  // BatchVerify may not exist on this server yet: probe once.
  if (sh.mode == "batch_verify") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::BatchVerifyResponse resp;
    grpc::Status s = sh.stubs[0]->BatchVerify(&ctx, sh.batch_reqs[0], &resp);
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      std::printf("{\"mode\":\"%s\",\"unimplemented\":true}\n", sh.mode.c_str());
      return 0;
    }
    if (!s.ok()) {
      std::fprintf(stderr, "loadgen: BatchVerify probe failed: %d %s\n", s.error_code(),
                   s.error_message().c_str());
      return 1;
    }
  }

  const int server_pid = absl::GetFlag(FLAGS_server_pid);
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < inflight; ++i) {
    auto s = std::make_unique<Slot>();
    s->sh = &sh;
    s->index = i;
    s->open_loop = qps > 0;
    slots.push_back(std::move(s));
  }
  const int64_t warmup_ns = absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_warmup));
  const int64_t duration_ns = absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_duration));
  const int64_t t0 = NowNs();
  const int64_t ws = t0 + warmup_ns;
  const int64_t we = ws + duration_ns;
  sh.window_start = ws;
  sh.window_end = we;

  // Sampler: server RSS every 50 ms, CPU and client CPU at the window's edges.
  ProcSample proc_start, proc_end;
  double self_cpu_start = 0, self_cpu_end = 0;
  long rss_max = 0;
  std::thread sampler([&] {
    while (NowNs() < ws) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    proc_start = ReadProc(server_pid);
    self_cpu_start = SelfCpuSeconds();
    rss_max = proc_start.rss_kib;
    for (;;) {
      const int64_t now = NowNs();
      if (now >= we) break;
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(we - now, 50000000)));
      if (NowNs() < we) rss_max = std::max(rss_max, ReadProc(server_pid).rss_kib);
    }
    proc_end = ReadProc(server_pid);
    self_cpu_end = SelfCpuSeconds();
    rss_max = std::max(rss_max, proc_end.rss_kib);
  });

  uint64_t late_starts = 0;
  if (qps <= 0) {
    for (auto& s : slots) s->Start(NowNs());
    while (NowNs() < we) {
      std::this_thread::sleep_for(
          std::chrono::nanoseconds(std::min<int64_t>(we - NowNs(), 20000000)));
    }
    sh.stopping = true;
  } else {
    for (int i = inflight - 1; i >= 0; --i) sh.free_slots.push_back(i);
    const double interval_ns = 1e9 / qps;
    uint64_t k = 0;
    for (;;) {
      const int64_t scheduled = t0 + static_cast<int64_t>(k * interval_ns);
      if (scheduled >= we) break;
      int64_t now = NowNs();
      if (scheduled > now) {
        // Sleep in short steps; the schedule, not the wake-up, sets each call's start time.
        std::this_thread::sleep_for(std::chrono::nanoseconds(scheduled - now));
      }
      int slot = -1;
      {
        std::unique_lock<std::mutex> l(sh.free_mu);
        if (sh.free_slots.empty()) {
          if (scheduled >= ws) ++late_starts;
          sh.free_cv.wait(l, [&] { return !sh.free_slots.empty(); });
        }
        slot = sh.free_slots.back();
        sh.free_slots.pop_back();
      }
      slots[static_cast<size_t>(slot)]->Start(scheduled);
      ++k;
    }
    sh.stopping = true;
  }
  sampler.join();
  // Drain.
  const int64_t drain_deadline = NowNs() + 15'000'000'000;
  while (sh.inflight.load() > 0 && NowNs() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (qps > 0) {
    std::unique_lock<std::mutex> l(sh.free_mu);
    sh.free_cv.wait_for(l, std::chrono::seconds(15),
                        [&] { return static_cast<int>(sh.free_slots.size()) == inflight; });
  }

  const double window_s = duration_ns / 1e9;
  const uint64_t calls = sh.calls.load();
  const double server_cpu = proc_end.cpu_s - proc_start.cpu_s;
  const double client_cpu = self_cpu_end - self_cpu_start;
  std::string err;
  for (char c : sh.first_error) {
    if (c == '"' || c == '\\') err.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) err.push_back(c);
  }
  std::printf(
      "{\"mode\":\"%s\",\"unimplemented\":%s,\"channels\":%d,\"inflight\":%d,"
      "\"target_qps\":%.1f,\"window_s\":%.3f,\"calls\":%llu,\"qps\":%.1f,\"items_per_s\":%.1f,"
      "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
      "\"sent_p50_us\":%.1f,\"sent_p99_us\":%.1f,\"sent_p999_us\":%.1f,"
      "\"errors\":%llu,\"first_error\":\"%s\",\"late_starts\":%llu,"
      "\"server_cpu_s\":%.3f,\"server_cpu_us_per_call\":%.2f,\"client_cpu_us_per_call\":%.2f,"
      "\"server_rss_max_kib\":%ld,\"server_hwm_kib\":%ld,"
      "\"request_bytes\":%zu,\"hist_sub_bits\":%d,\"hist\":%s,\"hist_sent\":%s}\n",
      sh.mode.c_str(), sh.unimplemented.load() > 0 ? "true" : "false", nch, inflight, qps, window_s,
      static_cast<unsigned long long>(calls), calls / window_s, sh.items.load() / window_s,
      sh.hist.Quantile(0.50) / 1e3, sh.hist.Quantile(0.90) / 1e3, sh.hist.Quantile(0.99) / 1e3,
      sh.hist.Quantile(0.999) / 1e3, sh.hist.Quantile(1.0) / 1e3, sh.hist_sent.Quantile(0.50) / 1e3,
      sh.hist_sent.Quantile(0.99) / 1e3, sh.hist_sent.Quantile(0.999) / 1e3,
      static_cast<unsigned long long>(sh.errors.load()), err.c_str(),
      static_cast<unsigned long long>(late_starts), server_cpu,
      calls ? server_cpu * 1e6 / calls : 0.0, calls ? client_cpu * 1e6 / calls : 0.0, rss_max,
      proc_end.hwm_kib,
      sh.floor ? (sh.mode == "floor_sign"           ? sh.noop_sign.ByteSizeLong()
                  : sh.mode == "floor_batch_verify" ? sh.noop_batch.ByteSizeLong()
                                                    : sh.noop_verify.ByteSizeLong())
               : (sh.mode == "sign"           ? sh.sign_req.ByteSizeLong()
                  : sh.mode == "batch_verify" ? sh.batch_reqs[0].ByteSizeLong()
                                              : sh.verify_reqs[0].ByteSizeLong()),
      Histogram::kSubBits, sh.hist.ToJson().c_str(), sh.hist_sent.ToJson().c_str());
  std::fflush(stdout);
  // Calls still outstanding after the drain timeout would call back into destroyed slots:
  // leave without running destructors.
  if (sh.inflight.load() != 0) std::_Exit(1);
  return 0;
}
