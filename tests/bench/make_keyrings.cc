// make_keyrings: fills a data directory with N keyrings of K keys each (1 primary + K-1
// rotated out), sealed with the KEK, through the real store libraries (keyring::Keyring,
// store::Sealer, store::FileStore): the same files the server would have written.
// `make bench` uses it to measure what 10,000 loaded keyrings cost in server RSS.
//
//   make_keyrings --data_dir=DIR --kek_file=F [--count=10000] [--keys=3] [--report_memory]
//
// --report_memory then loads the directory back through engine::Engine (the server's load
// path) and prints, as one JSON line, the live heap (mallinfo2) and RSS it costs per keyring,
// and the heap cost of one crypto::Hmac (each key holds one: since the precomputed-state
// HMAC, the object itself, two hash states and a vtable pointer).
#include <malloc.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/crypto/hmac.h"
#include "server/engine/engine.h"
#include "server/keyring/clock.h"
#include "server/keyring/keyring.h"
#include "server/keyring/lifecycle.h"
#include "server/store/file_store.h"
#include "server/store/sealer.h"

ABSL_FLAG(std::string, data_dir, "", "Data directory to fill (created if needed)");
ABSL_FLAG(std::string, kek_file, "", "KEK file (64 hex characters)");
ABSL_FLAG(int, count, 10000, "Number of keyrings");
ABSL_FLAG(int, keys, 3, "Keys per keyring");
ABSL_FLAG(bool, report_memory, false,
          "After writing, load the keyrings with engine::Engine and report memory per keyring");

namespace {

using sessiontoken::keyring::Keyring;

auto RotatePromote(const Keyring& kr, absl::Time now) {
  uint32_t id = 0;
  return sessiontoken::keyring::Rotate(kr, now, /*promote=*/true, &id);
}

long RssKib() {
  std::ifstream f("/proc/self/status");
  std::string key;
  long v = 0;
  while (f >> key) {
    if (key == "VmRSS:") {
      f >> v;
      return v;
    }
    f.ignore(1 << 16, '\n');
  }
  return 0;
}

size_t HeapInUse() { return mallinfo2().uordblks + mallinfo2().hblkhd; }

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "make_keyrings: %s: %s\n", what.c_str(), std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto kek = sessiontoken::store::LoadKekFile(absl::GetFlag(FLAGS_kek_file));
  if (!kek.ok()) return Fail("KEK", kek.status());
  auto sealer = sessiontoken::store::Sealer::New(*std::move(kek));
  if (!sealer.ok()) return Fail("sealer", sealer.status());
  auto store = sessiontoken::store::FileStore::Open(absl::GetFlag(FLAGS_data_dir));
  if (!store.ok()) return Fail("store", store.status());
  const int count = absl::GetFlag(FLAGS_count);
  const int keys = absl::GetFlag(FLAGS_keys);
  const absl::Time now = absl::Now();
  for (int i = 0; i < count; ++i) {
    const std::string name = absl::StrFormat("bench-%05d", i);
    auto kr = Keyring::Create(name, now);
    if (!kr.ok()) return Fail(name, kr.status());
    std::shared_ptr<const Keyring> cur = *kr;
    for (int k = 1; k < keys; ++k) {
      auto next = RotatePromote(*cur, now);
      if (!next.ok()) return Fail(name, next.status());
      cur = *next;
    }
    auto sealed = (*sealer)->Seal(*cur);
    if (!sealed.ok()) return Fail(name, sealed.status());
    auto v = (*store)->Put(name, *sealed, 0);
    if (!v.ok()) return Fail(name, v.status());
  }
  std::fprintf(stderr, "make_keyrings: %d keyrings of %d keys in %s\n", count, keys,
               absl::GetFlag(FLAGS_data_dir).c_str());
  if (!absl::GetFlag(FLAGS_report_memory)) return 0;

  // Load them back the way the server does. The store must be closed first (file lock).
  const std::string kek_file = absl::GetFlag(FLAGS_kek_file);
  store->reset();
  auto kek2 = sessiontoken::store::LoadKekFile(kek_file);
  if (!kek2.ok()) return Fail("KEK", kek2.status());
  auto sealer2 = sessiontoken::store::Sealer::New(*std::move(kek2));
  if (!sealer2.ok()) return Fail("sealer", sealer2.status());
  malloc_trim(0);
  const size_t heap0 = HeapInUse();
  const long rss0 = RssKib();
  std::unique_ptr<sessiontoken::engine::Engine> engine;
  {
    auto fs = sessiontoken::store::FileStore::Open(absl::GetFlag(FLAGS_data_dir));
    if (!fs.ok()) return Fail("store", fs.status());
    sessiontoken::engine::EngineOptions options;
    options.default_keyring = "";
    auto e = sessiontoken::engine::Engine::New(*std::move(fs), *std::move(sealer2),
                                               &sessiontoken::keyring::Clock::Real(), options);
    if (!e.ok()) return Fail("engine", e.status());
    engine = *std::move(e);
  }
  const size_t heap1 = HeapInUse();
  const long rss1 = RssKib();
  // One crypto::Hmac, as each key holds (the vector's own storage is allocated first).
  std::vector<std::unique_ptr<sessiontoken::crypto::Hmac>> macs;
  macs.reserve(1000);
  const size_t heap2 = HeapInUse();
  for (int i = 0; i < 1000; ++i) {
    auto m = sessiontoken::crypto::Hmac::New(sessiontoken::crypto::HashFunction::kSha256,
                                             std::string(32, 'k'));
    if (!m.ok()) return Fail("hmac", m.status());
    macs.push_back(*std::move(m));
  }
  const size_t heap3 = HeapInUse();
  std::printf(
      "{\"keyrings\":%d,\"keys\":%d,\"heap_bytes_per_keyring\":%.1f,"
      "\"rss_kib_per_keyring\":%.3f,\"heap_bytes_per_hmac\":%.1f}\n",
      count, keys, double(heap1 - heap0) / count, double(rss1 - rss0) / count,
      double(heap3 - heap2) / 1000);
  return 0;
}
