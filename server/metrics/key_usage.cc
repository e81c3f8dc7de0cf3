#include "server/metrics/key_usage.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"

namespace sessiontoken::metrics {
namespace {

constexpr int kValid = static_cast<int>(format::VerifyStatus::kValid);
constexpr int kKeyDisabled = static_cast<int>(format::VerifyStatus::kKeyDisabled);

// Samples kept: one a minute for the last hour, one an hour for the last day.
constexpr absl::Duration kHour = absl::Hours(1);
constexpr absl::Duration kDay = absl::Hours(24);

void Inc(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

std::atomic<uint64_t> next_instance{1};

// Per-thread cache of counter lookups: hits take no lock and touch no shared line.
struct CacheEntry {
  uint64_t instance = 0;
  uint32_t key_id = 0;
  void* keyring = nullptr;
  void* key = nullptr;
};
constexpr size_t kCacheSize = 64;
thread_local std::array<CacheEntry, kCacheSize> tls_cache;

size_t Slot(absl::string_view keyring, uint32_t key_id) {
  return absl::Hash<std::pair<absl::string_view, uint32_t>>{}({keyring, key_id}) % kCacheSize;
}

}  // namespace

struct KeyUsageRecorder::KeyCounters {
  explicit KeyCounters(uint32_t id) : key_id(id) {}
  const uint32_t key_id;
  std::array<std::atomic<uint64_t>, kVerifyStatusCount> results{};
  std::atomic<uint64_t> signed_tokens{0};
  std::atomic<int64_t> last_verified_unix{0};  // 0: never
  // Totals as of each sample (under mu_): minutes for the hour, hours for the day.
  struct Sample {
    absl::Time at;
    uint64_t valid = 0, disabled = 0, signed_tokens = 0;
  };
  std::deque<Sample> minutes, hours;
};

struct KeyUsageRecorder::KeyringCounters {
  explicit KeyringCounters(std::string n) : name(std::move(n)) {}
  const std::string name;
  std::array<std::atomic<uint64_t>, kVerifyStatusCount> results{};
  std::atomic<uint64_t> refresh_recommended{0};
  // Created under mu_; read under mu_ (the hot path reaches them through the cache).
  absl::flat_hash_map<uint32_t, std::unique_ptr<KeyCounters>> keys;
};

KeyUsageRecorder::KeyUsageRecorder(absl::Time counting_since)
    : counting_since_(counting_since), instance_(next_instance.fetch_add(1)) {}
KeyUsageRecorder::~KeyUsageRecorder() = default;

KeyUsageRecorder::Found KeyUsageRecorder::Lookup(absl::string_view keyring, uint32_t key_id,
                                                 const keyring::Keyring& snapshot) {
  CacheEntry& e = tls_cache[Slot(keyring, key_id)];
  if (e.instance == instance_ && e.key_id == key_id &&
      static_cast<KeyringCounters*>(e.keyring)->name == keyring) {
    return {static_cast<KeyringCounters*>(e.keyring), static_cast<KeyCounters*>(e.key)};
  }
  Found f = Create(keyring, key_id, snapshot);
  // Only lookups that found what they asked for are cached: a key id that does not exist
  // yet may be created later.
  if (key_id == 0 || f.key != nullptr) e = {instance_, key_id, f.keyring, f.key};
  return f;
}

KeyUsageRecorder::Found KeyUsageRecorder::Create(absl::string_view keyring, uint32_t key_id,
                                                 const keyring::Keyring& snapshot) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<KeyringCounters>& kr = keyrings_[keyring];
  if (kr == nullptr) kr = std::make_unique<KeyringCounters>(std::string(keyring));
  if (key_id == 0) return {kr.get(), nullptr};
  auto it = kr->keys.find(key_id);
  if (it != kr->keys.end()) return {kr.get(), it->second.get()};
  // Keys are never removed from a keyring (a destroyed key stays as a tombstone): a key
  // that exists now has a label for good, and nothing else gets one.
  if (snapshot.Find(key_id) == nullptr) return {kr.get(), nullptr};
  auto key = std::make_unique<KeyCounters>(key_id);
  KeyCounters* raw = key.get();
  kr->keys.emplace(key_id, std::move(key));
  return {kr.get(), raw};
}

void KeyUsageRecorder::OnVerify(absl::string_view keyring, const keyring::Keyring& snapshot,
                                const format::VerifyResult& result, absl::Time now) {
  const bool keyed = result.key_id != 0 && result.status != format::VerifyStatus::kMalformed &&
                     result.status != format::VerifyStatus::kUnknownKey;
  const Found f = Lookup(keyring, keyed ? result.key_id : 0, snapshot);
  const int i = static_cast<int>(result.status);
  if (i < 0 || i >= kVerifyStatusCount) return;
  Inc(f.keyring->results[i]);
  if (result.refresh_recommended) Inc(f.keyring->refresh_recommended);
  if (f.key == nullptr) return;
  Inc(f.key->results[i]);
  if (i == kValid) {
    const int64_t t = absl::ToUnixSeconds(now);
    // A plain store once a second at most: the line stays shared between readers.
    if (f.key->last_verified_unix.load(std::memory_order_relaxed) < t) {
      f.key->last_verified_unix.store(t, std::memory_order_relaxed);
    }
  }
}

void KeyUsageRecorder::OnSign(absl::string_view keyring, const keyring::Keyring& snapshot,
                              uint32_t key_id, absl::Time now) {
  const Found f = Lookup(keyring, key_id, snapshot);
  if (f.key != nullptr) Inc(f.key->signed_tokens);
}

KeyTotals KeyUsageRecorder::Read(const KeyCounters& k) {
  KeyTotals t;
  t.key_id = k.key_id;
  for (int i = 0; i < kVerifyStatusCount; ++i) {
    t.results[i] = k.results[i].load(std::memory_order_relaxed);
  }
  t.signed_tokens = k.signed_tokens.load(std::memory_order_relaxed);
  const int64_t last = k.last_verified_unix.load(std::memory_order_relaxed);
  if (last != 0) t.last_verified = absl::FromUnixSeconds(last);
  return t;
}

void KeyUsageRecorder::Sample(absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (auto& [name, kr] : keyrings_) {
    for (auto& [id, key] : kr->keys) {
      const KeyTotals t = Read(*key);
      KeyCounters::Sample s{now, t.results[kValid], t.results[kKeyDisabled], t.signed_tokens};
      if (s.valid == 0 && s.disabled == 0 && s.signed_tokens == 0) continue;  // unused yet
      key->minutes.push_back(s);
      while (key->minutes.size() > 1 && key->minutes[1].at <= now - kHour) {
        key->minutes.pop_front();
      }
      if (key->hours.empty() || now - key->hours.back().at >= kHour) key->hours.push_back(s);
      while (key->hours.size() > 1 && key->hours[1].at <= now - kDay) key->hours.pop_front();
    }
  }
}

KeyUsage KeyUsageRecorder::Usage(absl::string_view keyring, uint32_t key_id, absl::Time now) const {
  KeyUsage u;
  u.key_id = key_id;
  absl::MutexLock lock(&mu_);
  auto kr = keyrings_.find(keyring);
  if (kr == keyrings_.end()) return u;
  auto it = kr->second->keys.find(key_id);
  if (it == kr->second->keys.end()) return u;
  const KeyCounters& k = *it->second;
  const KeyTotals t = Read(k);
  u.last_verified = t.last_verified;
  // The newest sample taken at or before `since` is the baseline; none: the key saw no
  // token before `since` (samples start with its first use), so the baseline is 0.
  auto baseline = [&](const std::deque<KeyCounters::Sample>& samples, absl::Time since) {
    KeyCounters::Sample b{since};
    for (const auto& s : samples) {
      if (s.at > since) break;
      b = s;
    }
    return b;
  };
  const KeyCounters::Sample hour = baseline(k.minutes, now - kHour);
  const KeyCounters::Sample day = baseline(k.hours, now - kDay);
  u.verified_last_hour = t.results[kValid] - hour.valid;
  u.verified_last_day = t.results[kValid] - day.valid;
  u.rejected_disabled_last_day = t.results[kKeyDisabled] - day.disabled;
  u.signed_last_day = t.signed_tokens - day.signed_tokens;
  return u;
}

std::vector<KeyringTotals> KeyUsageRecorder::Totals() const {
  std::vector<KeyringTotals> out;
  absl::MutexLock lock(&mu_);
  out.reserve(keyrings_.size());
  for (const auto& [name, kr] : keyrings_) {
    KeyringTotals t;
    t.keyring = name;
    for (int i = 0; i < kVerifyStatusCount; ++i) {
      t.results[i] = kr->results[i].load(std::memory_order_relaxed);
    }
    t.refresh_recommended = kr->refresh_recommended.load(std::memory_order_relaxed);
    for (const auto& [id, key] : kr->keys) t.keys.push_back(Read(*key));
    std::sort(t.keys.begin(), t.keys.end(),
              [](const KeyTotals& a, const KeyTotals& b) { return a.key_id < b.key_id; });
    out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(),
            [](const KeyringTotals& a, const KeyringTotals& b) { return a.keyring < b.keyring; });
  return out;
}

}  // namespace sessiontoken::metrics
