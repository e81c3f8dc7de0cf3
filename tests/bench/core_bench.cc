// core_bench: single-thread cost of the token hot path, without gRPC (Google Benchmark).
//
//   NativeSign/N, NativeVerify/N     keyring::Keyring::Sign / Verify (3-key keyring): the
//                                    whole core path the service runs per call
//   NativeCodecSign/N, ...Verify/N   token::SignNative / ParseNative + CheckNativeMac only
//   FlaskSign/N, FlaskVerify/N       token::SignFlask / ParseFlask + CheckFlaskSignature
//                                    (only when server/token/flask.cc is built)
//   EngineVerify, EngineSign         engine::Engine (MemoryStore) at 1 and 2 threads: adds
//                                    the registry lookup (atomic shared_ptr loads)
//   HmacSha256, HmacSha1             crypto::Hmac::Compute (precomputed inner/outer hash
//                                    states); checked against RFC 4231 / RFC 2202 vectors and
//                                    required to allocate nothing per MAC
//   Deflate/compress2, /reused       zlib: compress2 (a fresh deflate state per call, what
//                                    token::SignFlask did before) vs one stream reused per
//                                    thread (what it does now); same output bytes
//   BatchVerifyProto/heap, /arena    the protobuf work of one BatchVerify call of 100 tokens
//                                    (parse request, build and serialize the response the
//                                    way DoBatchVerify fills it), heap vs a reused arena
//   SnapshotLoad/atomic_shared_ptr,  the engine's registry read (one std::atomic<shared_ptr>
//     /generation_cached             load per Sign/Verify, Engine::CurrentView) vs a
//                                    thread-local copy revalidated by a generation counter
//                                    (not applied: see docs/performance.md); 1 and 2 threads
//
// N is the payload size in bytes; the payload is JSON text {"csrf":"<hex>"} (the same
// generator as loadgen.cc and itsdangerous_bench.py). Every benchmark reports
// items_per_second (tokens/s on one thread) and allocs/op (heap allocations per token).
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "alloc_count.h"
#include "google/protobuf/arena.h"
#include "payload.h"
#include "server/crypto/hmac.h"
#include "server/crypto/random.h"
#include "server/engine/engine.h"
#include "server/format/key_macs.h"
#include "server/format/keyring_signer.h"
#include "server/keyring/clock.h"
#include "server/keyring/keyring.h"
#include "server/keyring/lifecycle.h"
#include "server/store/sealer.h"
#include "server/token/native.h"
#include "sessiontoken/v1/tokens.pb.h"
#include "tests/testing/memory_store.h"
#if defined(SESSIONTOKEN_BENCH_HAVE_FLASK)
#include "server/token/flask.h"
#endif

namespace sessiontoken::bench {
namespace {

constexpr absl::string_view kAudience = "web";

using ::sessiontoken::bench::Payload;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "core_bench: setup failed: %s\n", what);
  std::abort();
}

std::shared_ptr<const keyring::Keyring> RotatePromote(const keyring::Keyring& kr, absl::Time now) {
  uint32_t id = 0;
  auto next = keyring::Rotate(kr, now, /*promote=*/true, &id);
  if (!next.ok()) Die("Rotate");
  return *next;
}

// A keyring of 3 keys (primary + 2 rotated out), like a keyring after two rotations, as the
// engine serves it.
const format::KeyringSigner& BenchKeyring() {
  static const std::shared_ptr<const format::KeyringSigner> signer = [] {
    const absl::Time now = absl::Now();
    auto k = keyring::Keyring::Create("bench", now);
    if (!k.ok()) Die("Keyring::Create");
    std::shared_ptr<const keyring::Keyring> r = *k;
    r = RotatePromote(*r, now);
    r = RotatePromote(*r, now);
    auto s = format::KeyringSigner::New(r);
    if (!s.ok()) Die("KeyringSigner::New");
    return *s;
  }();
  return *signer;
}

// BenchKeyring() with seal_payloads on: the same keys, payloads sealed with AES-256-GCM.
const format::KeyringSigner& SealedBenchKeyring() {
  static const std::shared_ptr<const format::KeyringSigner> signer = [] {
    const keyring::Keyring& plain = BenchKeyring().keyring();
    v1::KeyringPolicy policy = plain.policy();
    policy.set_seal_payloads(true);
    auto k = plain.Next(plain.keys(), policy);
    if (!k.ok()) Die("Keyring::Next");
    auto s = format::KeyringSigner::New(*k);
    if (!s.ok()) Die("KeyringSigner::New");
    return *s;
  }();
  return *signer;
}

// The primary key's MAC (what the codec-level benchmarks sign with).
const crypto::Hmac& PrimaryMac() {
  static const format::KeyMacs* macs = [] {
    auto m = format::KeyMacs::New(BenchKeyring().keyring());
    if (!m.ok()) Die("KeyMacs::New");
    return new format::KeyMacs(*std::move(m));
  }();
  return *macs->Find(BenchKeyring().keyring().primary().id())->mac;
}

class AllocCounter {
 public:
  AllocCounter() : start_(ThreadAllocations()) {}
  void Report(benchmark::State& state) {
    state.counters["allocs/op"] = benchmark::Counter(
        static_cast<double>(ThreadAllocations() - start_), benchmark::Counter::kAvgIterations);
    state.SetItemsProcessed(state.iterations());
  }

 private:
  uint64_t start_;
};

// ---- native, keyring level ----------------------------------------------------------------

// Arg: payload bytes. `kr`: BenchKeyring() or SealedBenchKeyring().
void NativeSign(benchmark::State& state, const format::KeyringSigner& kr) {
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  const absl::Time now = absl::Now();
  AllocCounter allocs;
  for (auto _ : state) {
    auto r = kr.Sign(payload, kAudience, now, absl::Hours(1));
    benchmark::DoNotOptimize(r);
  }
  allocs.Report(state);
}
void BM_NativeSign(benchmark::State& state) { NativeSign(state, BenchKeyring()); }
BENCHMARK(BM_NativeSign)->Arg(64)->Arg(1024);
void BM_NativeSignSealed(benchmark::State& state) { NativeSign(state, SealedBenchKeyring()); }
BENCHMARK(BM_NativeSignSealed)->Arg(64)->Arg(1024);

void NativeVerify(benchmark::State& state, const format::KeyringSigner& kr) {
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  const absl::Time now = absl::Now();
  auto signed_token = kr.Sign(payload, kAudience, now, absl::Hours(1));
  if (!signed_token.ok()) Die("Sign");
  const std::string token = signed_token->token;
  if (kr.Verify(token, kAudience, now).status != format::VerifyStatus::kValid) Die("Verify");
  AllocCounter allocs;
  for (auto _ : state) {
    format::VerifyResult r = kr.Verify(token, kAudience, now);
    benchmark::DoNotOptimize(r);
  }
  allocs.Report(state);
}
void BM_NativeVerify(benchmark::State& state) { NativeVerify(state, BenchKeyring()); }
BENCHMARK(BM_NativeVerify)->Arg(64)->Arg(1024);
void BM_NativeVerifySealed(benchmark::State& state) { NativeVerify(state, SealedBenchKeyring()); }
BENCHMARK(BM_NativeVerifySealed)->Arg(64)->Arg(1024);
// The same at 1 and 2 threads (wall-clock throughput of all threads): the control for
// EngineVerify below, which adds only the registry lookup.
BENCHMARK(BM_NativeVerify)
    ->Name("BM_NativeVerifyMT")
    ->Arg(64)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// ---- native, codec level ------------------------------------------------------------------

void BM_NativeCodecSign(benchmark::State& state) {
  const format::KeyringSigner& kr = BenchKeyring();
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  const token::NativeClaims claims{kr.keyring().primary().id(), 1760000000, 1760003600};
  AllocCounter allocs;
  for (auto _ : state) {
    std::string t = token::SignNative(PrimaryMac(), claims, kAudience, payload);
    benchmark::DoNotOptimize(t);
  }
  allocs.Report(state);
}
BENCHMARK(BM_NativeCodecSign)->Arg(64)->Arg(1024);

void BM_NativeCodecVerify(benchmark::State& state) {
  const format::KeyringSigner& kr = BenchKeyring();
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  const token::NativeClaims claims{kr.keyring().primary().id(), 1760000000, 1760003600};
  const std::string token = token::SignNative(PrimaryMac(), claims, kAudience, payload);
  AllocCounter allocs;
  for (auto _ : state) {
    auto t = token::ParseNative(token);
    bool ok = t.has_value() && token::CheckNativeMac(PrimaryMac(), *t, kAudience);
    if (!ok) state.SkipWithError("token did not verify");
    benchmark::DoNotOptimize(ok);
  }
  allocs.Report(state);
}
BENCHMARK(BM_NativeCodecVerify)->Arg(64)->Arg(1024);

// ---- Flask ----------------------------------------------------------------------------------

#if defined(SESSIONTOKEN_BENCH_HAVE_FLASK)
const crypto::Hmac& FlaskSigner() {
  static const std::unique_ptr<crypto::Hmac> signer = [] {
    auto s = token::DeriveFlaskSigner("bench-flask-secret-key", token::kFlaskDefaultSalt);
    if (!s.ok()) Die("DeriveFlaskSigner");
    return *std::move(s);
  }();
  return *signer;
}

void BM_FlaskSign(benchmark::State& state) {
  const crypto::Hmac& signer = FlaskSigner();
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  const int64_t ts = absl::ToUnixSeconds(absl::Now());
  AllocCounter allocs;
  for (auto _ : state) {
    std::string t = token::SignFlask(signer, payload, ts);
    benchmark::DoNotOptimize(t);
  }
  allocs.Report(state);
}
BENCHMARK(BM_FlaskSign)->Arg(64)->Arg(1024);

void BM_FlaskVerify(benchmark::State& state) {
  const crypto::Hmac& signer = FlaskSigner();
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  const std::string token = token::SignFlask(signer, payload, absl::ToUnixSeconds(absl::Now()));
  AllocCounter allocs;
  for (auto _ : state) {
    auto t = token::ParseFlask(token);
    bool ok = t.has_value() && token::CheckFlaskSignature(signer, *t);
    if (!ok) state.SkipWithError("flask token did not verify");
    benchmark::DoNotOptimize(ok);
  }
  allocs.Report(state);
}
BENCHMARK(BM_FlaskVerify)->Arg(64)->Arg(1024);
#endif

// ---- engine (registry lookup + keyring), 1 and 2 threads ---------------------------------

struct EngineFixture {
  std::unique_ptr<engine::Engine> engine;
  std::string token;
};

const EngineFixture& BenchEngine() {
  static const EngineFixture* f = [] {
    auto* fx = new EngineFixture();
    auto sealer = store::Sealer::New(crypto::RandomSecret(32));
    if (!sealer.ok()) Die("Sealer::New");
    engine::EngineOptions options;
    auto e = engine::Engine::New(std::make_unique<store::MemoryStore>(), *std::move(sealer),
                                 &keyring::Clock::Real(), options);
    if (!e.ok()) Die("Engine::New");
    fx->engine = *std::move(e);
    auto s = fx->engine->Sign(options.default_keyring, Payload(64), kAudience, absl::Hours(1));
    if (!s.ok()) Die("Engine::Sign");
    fx->token = s->token;
    return fx;
  }();
  return *f;
}

void BM_EngineVerify(benchmark::State& state) {
  const EngineFixture& f = BenchEngine();
  const std::string name = f.engine->options().default_keyring;
  AllocCounter allocs;
  for (auto _ : state) {
    auto r = f.engine->Verify(name, f.token, kAudience);
    if (!r.ok() || r->status != format::VerifyStatus::kValid) {
      state.SkipWithError("engine verify failed");
    }
    benchmark::DoNotOptimize(r);
  }
  allocs.Report(state);
}
BENCHMARK(BM_EngineVerify)->Threads(1)->Threads(2)->UseRealTime();

void BM_EngineSign(benchmark::State& state) {
  const EngineFixture& f = BenchEngine();
  const std::string name = f.engine->options().default_keyring;
  const std::string payload = Payload(64);
  AllocCounter allocs;
  for (auto _ : state) {
    auto r = f.engine->Sign(name, payload, kAudience, absl::Hours(1));
    benchmark::DoNotOptimize(r);
  }
  allocs.Report(state);
}
BENCHMARK(BM_EngineSign)->Threads(1)->Threads(2)->UseRealTime();

// ---- Verify with a revocation list (docs/revocation.md): 100,000 entries vs none ----------

// An engine whose default keyring holds `entries` revocations (half token ids of tokens signed
// for it, half subjects), all made through Engine::RevokeToken/RevokeSubject, and a v2 token
// with a subject and a token id that none of them matches (so Verify does both lookups and
// answers VALID).
struct RevokedFixture {
  std::unique_ptr<engine::Engine> engine;
  std::string token;
};

std::unique_ptr<RevokedFixture> MakeRevokedFixture(int entries) {
  auto fx = std::make_unique<RevokedFixture>();
  auto sealer = store::Sealer::New(crypto::RandomSecret(32));
  if (!sealer.ok()) Die("Sealer::New");
  engine::EngineOptions options;
  options.limits.max_revocations = 100000;
  auto e = engine::Engine::New(std::make_unique<store::MemoryStore>(), *std::move(sealer),
                               &keyring::Clock::Real(), options);
  if (!e.ok()) Die("Engine::New");
  fx->engine = *std::move(e);
  const std::string name = options.default_keyring;
  for (int i = 0; i < entries; ++i) {
    const std::string subject = absl::StrCat("user-", i);
    absl::Status s;
    if (i % 2 == 0) {
      auto t = fx->engine->Sign(name, "p", kAudience, absl::Hours(1), nullptr, subject);
      if (!t.ok()) Die("Engine::Sign");
      s = fx->engine->RevokeToken("bench", name, t->token, kAudience).status();
    } else {
      s = fx->engine->RevokeSubject("bench", name, subject).status();
    }
    if (!s.ok()) Die("Engine::Revoke");
  }
  if (fx->engine->RevocationCount(name) != static_cast<size_t>(entries)) Die("revocation count");
  auto t = fx->engine->Sign(name, Payload(64), kAudience, absl::Hours(1), nullptr, "user-active");
  if (!t.ok()) Die("Engine::Sign");
  fx->token = t->token;
  return fx;
}

void BM_EngineVerifyRevocations(benchmark::State& state) {
  static RevokedFixture* fixtures[2] = {nullptr, nullptr};
  const int entries = static_cast<int>(state.range(0));
  RevokedFixture*& f = fixtures[entries == 0 ? 0 : 1];
  if (f == nullptr) f = MakeRevokedFixture(entries).release();
  const std::string name = f->engine->options().default_keyring;
  AllocCounter allocs;
  for (auto _ : state) {
    auto r = f->engine->Verify(name, f->token, kAudience);
    if (!r.ok() || r->status != format::VerifyStatus::kValid) {
      state.SkipWithError("engine verify failed");
    }
    benchmark::DoNotOptimize(r);
  }
  allocs.Report(state);
}
BENCHMARK(BM_EngineVerifyRevocations)->Arg(0)->Arg(100000);

// ---- HMAC (crypto::Hmac) -----------------------------------------------------------------

// The MAC input of a native token with a 64-byte payload: prefix, be32 length, audience,
// 88 signed bytes (99 bytes in all).
const std::string& MacInput() {
  static const std::string s(88, 'x');
  return s;
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kHex[p[i] >> 4]);
    s.push_back(kHex[p[i] & 15]);
  }
  return s;
}

// The timed loop alone, out of line: callgrind_core.py counts instructions inside it only.
[[gnu::noinline]] void HmacComputeLoop(benchmark::State& state, const crypto::Hmac& mac,
                                       uint8_t* out) {
  for (auto _ : state) {
    mac.Compute({"st1.", absl::string_view("\0\0\0\3", 4), kAudience, MacInput()}, out);
    benchmark::DoNotOptimize(out);
  }
}

// Benchmarks crypto::Hmac::Compute on MacInput() after checking it against a published test
// vector (RFC 4231 test case 2 for SHA-256, RFC 2202 test case 2 for SHA-1: key "Jefe").
// crypto::Hmac keeps precomputed inner/outer hash states, so a MAC must not allocate: the
// benchmark fails (and says so) if it does.
void HmacBench(benchmark::State& state, crypto::HashFunction hash, const char* expected_hex) {
  {
    auto ref = crypto::Hmac::New(hash, "Jefe");
    if (!ref.ok()) Die("Hmac::New");
    uint8_t tag[crypto::Hmac::kMaxTagSize];
    (*ref)->Compute({"what do ya want ", "for nothing?"}, tag);
    if (Hex(tag, (*ref)->tag_size()) != expected_hex) {
      state.SkipWithError("crypto::Hmac does not match the RFC test vector");
      return;
    }
  }
  auto mac = crypto::Hmac::New(hash, std::string(32, 'k'));
  if (!mac.ok()) Die("Hmac::New");
  uint8_t out[crypto::Hmac::kMaxTagSize];
  const absl::string_view tag(reinterpret_cast<const char*>(out), (*mac)->tag_size());
  (*mac)->Compute({"st1.", absl::string_view("\0\0\0\3", 4), kAudience, MacInput()}, out);
  const uint64_t before = ThreadAllocations();
  for (int i = 0; i < 1000; ++i) {
    (*mac)->Compute({"st1.", absl::string_view("\0\0\0\3", 4), kAudience, MacInput()}, out);
    if (!(*mac)->Verify({"st1.", absl::string_view("\0\0\0\3", 4), kAudience, MacInput()}, tag)) {
      Die("crypto::Hmac::Verify rejected its own tag");
    }
  }
  if (const uint64_t n = ThreadAllocations() - before; n != 0) {
    std::fprintf(stderr, "core_bench: crypto::Hmac allocated %.2f times per Compute+Verify\n",
                 static_cast<double>(n) / 1000);
    state.SkipWithError("crypto::Hmac allocates per MAC (expected 0)");
    return;
  }
  AllocCounter allocs;
  HmacComputeLoop(state, **mac, out);
  allocs.Report(state);
}

void BM_HmacSha256(benchmark::State& state) {
  HmacBench(state, crypto::HashFunction::kSha256,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
BENCHMARK(BM_HmacSha256);

void BM_HmacSha1(benchmark::State& state) {
  HmacBench(state, crypto::HashFunction::kSha1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}
BENCHMARK(BM_HmacSha1);

// ---- zlib: compress2 per call vs a reused stream ---------------------------------------------

std::string DeflateCompress2(absl::string_view in) {
  uLongf size = compressBound(static_cast<uLong>(in.size()));
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(in.data()),
            static_cast<uLong>(in.size()), Z_DEFAULT_COMPRESSION);
  out.resize(size);
  return out;
}

// What token::SignFlask does now (server/token/flask.cc): one deflate state per thread,
// reset (not re-allocated) per call. deflateReset keeps the parameters and buffers, so the
// output is byte-identical to compress2's.
std::string DeflateReused(absl::string_view in) {
  struct Stream {
    z_stream zs{};
    Stream() { deflateInit(&zs, Z_DEFAULT_COMPRESSION); }
    ~Stream() { deflateEnd(&zs); }
  };
  thread_local Stream s;
  deflateReset(&s.zs);
  std::string out(deflateBound(&s.zs, static_cast<uLong>(in.size())), '\0');
  s.zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.zs.avail_in = static_cast<uInt>(in.size());
  s.zs.next_out = reinterpret_cast<Bytef*>(out.data());
  s.zs.avail_out = static_cast<uInt>(out.size());
  deflate(&s.zs, Z_FINISH);
  out.resize(out.size() - s.zs.avail_out);
  return out;
}

void BM_Deflate_compress2(benchmark::State& state) {
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  AllocCounter allocs;
  for (auto _ : state) benchmark::DoNotOptimize(DeflateCompress2(payload));
  allocs.Report(state);
}
BENCHMARK(BM_Deflate_compress2)->Arg(64)->Arg(1024);

void BM_Deflate_reused(benchmark::State& state) {
  const std::string payload = Payload(static_cast<size_t>(state.range(0)));
  if (DeflateReused(payload) != DeflateCompress2(payload) ||
      DeflateReused(payload) != DeflateCompress2(payload)) {
    Die("reused deflate stream differs from compress2");
  }
  AllocCounter allocs;
  for (auto _ : state) benchmark::DoNotOptimize(DeflateReused(payload));
  allocs.Report(state);
}
BENCHMARK(BM_Deflate_reused)->Arg(64)->Arg(1024);

// ---- BatchVerify's protobuf work: heap vs arena ------------------------------------------

const std::string& BatchRequestBytes() {
  static const std::string bytes = [] {
    const format::KeyringSigner& kr = BenchKeyring();
    v1::BatchVerifyRequest req;
    for (int i = 0; i < 100; ++i) {
      auto t = kr.Sign(Payload(64), kAudience, absl::Now(), absl::Hours(1));
      if (!t.ok()) Die("Sign");
      v1::VerifyRequest* item = req.add_items();
      item->set_keyring("default");
      item->set_token(t->token);
      item->set_audience(std::string(kAudience));
    }
    return req.SerializeAsString();
  }();
  return bytes;
}

// One call's worth: what gRPC (parse, serialize) and DoBatchVerify/DoVerify (fill the
// response) do with the messages, minus the token verification itself.
void BatchProtoWork(google::protobuf::Arena* arena, const std::string& in, std::string* out) {
  auto* req = google::protobuf::Arena::CreateMessage<v1::BatchVerifyRequest>(arena);
  auto* resp = google::protobuf::Arena::CreateMessage<v1::BatchVerifyResponse>(arena);
  req->ParseFromString(in);
  resp->mutable_items()->Reserve(req->items_size());
  static const std::string payload = Payload(64);
  for (const v1::VerifyRequest& item : req->items()) {
    benchmark::DoNotOptimize(item.token().data());
    v1::VerifyResponse* r = resp->add_items()->mutable_response();
    r->set_result(v1::VerifyResponse::VALID);
    r->set_key_id(0x9abcdef0u);
    r->mutable_issued_at()->set_seconds(1760000000);
    r->mutable_expires_at()->set_seconds(1760003600);
    r->set_payload(payload);
    r->set_refresh_recommended(false);
  }
  resp->SerializeToString(out);
  if (arena == nullptr) {
    delete req;
    delete resp;
  }
}

void BM_BatchVerifyProto_heap(benchmark::State& state) {
  const std::string& in = BatchRequestBytes();
  std::string out;
  AllocCounter allocs;
  for (auto _ : state) BatchProtoWork(nullptr, in, &out);
  allocs.Report(state);
  state.SetItemsProcessed(state.iterations() * 100);  // tokens
}
BENCHMARK(BM_BatchVerifyProto_heap);

// What a grpc::MessageAllocator (SetMessageAllocatorFor_BatchVerify) backed by an arena
// whose first block is kept per thread would do.
void BM_BatchVerifyProto_arena(benchmark::State& state) {
  const std::string& in = BatchRequestBytes();
  std::string out;
  static thread_local std::unique_ptr<char[]> block(new char[128 << 10]);
  google::protobuf::ArenaOptions opts;
  opts.initial_block = block.get();
  opts.initial_block_size = 128 << 10;
  AllocCounter allocs;
  for (auto _ : state) {
    google::protobuf::Arena arena(opts);
    BatchProtoWork(&arena, in, &out);
  }
  allocs.Report(state);
  state.SetItemsProcessed(state.iterations() * 100);  // tokens
}
BENCHMARK(BM_BatchVerifyProto_arena);

// ---- registry snapshot reads ------------------------------------------------------------------

struct FakeRegistry {
  std::shared_ptr<const int> entry = std::make_shared<const int>(42);
};
std::atomic<std::shared_ptr<const FakeRegistry>> g_registry{std::make_shared<const FakeRegistry>()};
std::atomic<uint64_t> g_generation{1};

// What Engine::Sign/Verify do per call (Engine::CurrentView; a batch does it once): an
// atomic<shared_ptr> load, released at the end of the call. The keyring is then used by
// pointer (no copy of the entry's shared_ptr).
void BM_SnapshotLoad_atomic_shared_ptr(benchmark::State& state) {
  for (auto _ : state) {
    std::shared_ptr<const FakeRegistry> reg = g_registry.load(std::memory_order_acquire);
    const int& entry = *reg->entry;
    benchmark::DoNotOptimize(entry);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SnapshotLoad_atomic_shared_ptr)->Threads(1)->Threads(2);

// The alternative (not applied: an idle thread would keep a destroyed key's material alive):
// each thread keeps its own shared_ptr to the registry and re-loads it only when a writer has
// bumped the generation; readers do no atomic read-modify-write.
void BM_SnapshotLoad_generation_cached(benchmark::State& state) {
  thread_local uint64_t cached_gen = 0;
  thread_local std::shared_ptr<const FakeRegistry> cached;
  for (auto _ : state) {
    const uint64_t g = g_generation.load(std::memory_order_acquire);
    if (g != cached_gen) {
      cached = g_registry.load(std::memory_order_acquire);
      cached_gen = g;
    }
    const int& entry = *cached->entry;
    benchmark::DoNotOptimize(entry);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SnapshotLoad_generation_cached)->Threads(1)->Threads(2);

}  // namespace
}  // namespace sessiontoken::bench

BENCHMARK_MAIN();
