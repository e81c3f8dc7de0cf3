#include "server/engine/revocations.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace sessiontoken::engine {
namespace {
// Eight bytes as a little-endian word, whatever the machine's byte order.
uint64_t LoadLittleEndian64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

// RevocationHash, inlined into the hot path (RevokedSlow) with its namespace byte known.
[[gnu::always_inline]] inline uint64_t HashOf(char kind, absl::string_view key) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^
               (static_cast<uint64_t>(static_cast<unsigned char>(kind)) << 56) ^ key.size();
  auto mix = [&h](uint64_t w) {
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  };
  const char* p = key.data();
  size_t n = key.size();
  for (; n >= 8; p += 8, n -= 8) mix(LoadLittleEndian64(p));
  // The tail (0-7 bytes) as the low bytes of a word, in registers: from the key's last 8
  // bytes when it has them, else byte by byte (a copy through memory stalls the load).
  uint64_t tail = 0;
  if (n > 0 && key.size() >= 8) {
    tail = LoadLittleEndian64(p + n - 8) >> (8 * (8 - n));
  } else {
    for (size_t b = n; b > 0; --b) tail = (tail << 8) | static_cast<unsigned char>(p[b - 1]);
  }
  mix(tail);
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 29);
}
}  // namespace

// A stable 64-bit hash (the same in every process and build: it picks the stored shard), 8
// bytes per step: multiply-xorshift rounds over little-endian words (the tail zero-padded),
// seeded by the namespace byte. Fast on the hot path: a 22-character token id is 3 rounds
// of one load each. RevocationListTest.RevocationHashIsPinned holds its values.
uint64_t RevocationHash(char kind, absl::string_view key) { return HashOf(kind, key); }

namespace {
int ShardOf(char kind, absl::string_view key) {
  return static_cast<int>(RevocationHash(kind, key) % kRevocationShards);
}
}  // namespace

std::string RevocationRecordName(absl::string_view keyring, int shard) {
  return absl::StrFormat("%s%s.%03d", kRevocationPrefix, keyring, shard);
}

std::optional<RevocationRecord> ParseRevocationRecordName(absl::string_view record) {
  if (!absl::ConsumePrefix(&record, kRevocationPrefix)) return std::nullopt;
  const size_t dot = record.rfind('.');
  if (dot == absl::string_view::npos || dot == 0 || record.size() - dot != 4) return std::nullopt;
  int shard = 0;
  if (!absl::SimpleAtoi(record.substr(dot + 1), &shard) || shard < 0 ||
      shard >= kRevocationShards) {
    return std::nullopt;
  }
  return RevocationRecord{std::string(record.substr(0, dot)), shard};
}

int TokenShard(absl::string_view token_id) { return ShardOf('t', token_id); }
int SubjectShard(absl::string_view subject) { return ShardOf('s', subject); }

absl::StatusOr<std::shared_ptr<RevocationShard>> RevocationShard::FromStored(
    const v1::StoredRevocations& stored, uint64_t version) {
  auto shard = std::make_shared<RevocationShard>();
  shard->version_ = version;
  for (const v1::StoredRevocation& e : stored.entries()) {
    switch (e.target_case()) {
      case v1::StoredRevocation::kTokenId:
        shard->AddToken(e.token_id(), e.drop_after_unix());
        break;
      case v1::StoredRevocation::kSubject:
        shard->AddSubject(e.subject(), e.revoked_unix(), e.drop_after_unix());
        break;
      default:
        return absl::DataLossError("revocation entry without a target");
    }
  }
  return shard;
}

void RevocationShard::ToStored(absl::string_view keyring, int shard,
                               v1::StoredRevocations* out) const {
  out->set_keyring(std::string(keyring));
  out->set_shard(static_cast<uint32_t>(shard));
  for (const auto& [id, drop] : tokens_) {
    v1::StoredRevocation* e = out->add_entries();
    e->set_token_id(id);
    e->set_drop_after_unix(drop);
  }
  for (const auto& [subject, s] : subjects_) {
    v1::StoredRevocation* e = out->add_entries();
    e->set_subject(subject);
    e->set_revoked_unix(s.cutoff);
    e->set_drop_after_unix(s.drop_after);
  }
}

std::shared_ptr<RevocationShard> RevocationShard::Pruned(int64_t now) const {
  auto out = std::make_shared<RevocationShard>();
  out->version_ = version_;
  for (const auto& [id, drop] : tokens_) {
    if (drop > now) out->tokens_.emplace(id, drop);
  }
  for (const auto& [subject, s] : subjects_) {
    if (s.drop_after > now) out->subjects_.emplace(subject, s);
  }
  out->Recompute();
  return out;
}

void RevocationShard::AddToken(absl::string_view token_id, int64_t drop_after) {
  int64_t& drop = tokens_[token_id];
  drop = std::max(drop, drop_after);
  earliest_drop_ = std::min(earliest_drop_, drop);
}

void RevocationShard::AddSubject(absl::string_view subject, int64_t cutoff, int64_t drop_after) {
  Subject& s = subjects_[subject];
  s.cutoff = std::max(s.cutoff, cutoff);
  s.drop_after = std::max(s.drop_after, drop_after);
  Recompute();  // a later drop time may have replaced the earliest one
}

void RevocationShard::Recompute() {
  earliest_drop_ = INT64_MAX;
  for (const auto& [id, drop] : tokens_) earliest_drop_ = std::min(earliest_drop_, drop);
  for (const auto& [subject, s] : subjects_) {
    earliest_drop_ = std::min(earliest_drop_, s.drop_after);
  }
}

std::optional<int64_t> RevocationShard::FindToken(absl::string_view token_id) const {
  auto it = tokens_.find(token_id);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

const RevocationShard::Subject* RevocationShard::FindSubject(absl::string_view subject) const {
  auto it = subjects_.find(subject);
  return it == subjects_.end() ? nullptr : &it->second;
}

std::shared_ptr<const RevocationList> RevocationList::Empty() {
  static const std::shared_ptr<const RevocationList> empty = [] {
    auto list = std::make_shared<RevocationList>();
    auto shard = std::make_shared<const RevocationShard>();
    list->shards_.fill(shard);
    return list;
  }();
  return empty;
}

// Both bits of an entry lie in one 64-bit word (a "blocked" filter): one load per lookup.
uint64_t RevocationList::FilterMask(uint64_t h) {
  return (uint64_t{1} << ((h >> 40) & 63)) | (uint64_t{1} << ((h >> 46) & 63));
}

size_t RevocationList::FilterWord(uint64_t h) { return (h >> 8) & (kFilterWords - 1); }

void RevocationList::Mark(Filter* f, uint64_t h) { (*f)[FilterWord(h)] |= FilterMask(h); }

bool RevocationList::MayHold(uint64_t h) const {
  const uint64_t mask = FilterMask(h);
  return ((*filter_)[FilterWord(h)] & mask) == mask;
}

std::shared_ptr<const RevocationList> RevocationList::With(
    int index, std::shared_ptr<const RevocationShard> shard) const {
  auto out = std::make_shared<RevocationList>(*this);
  const bool shrank = shard->size() < shards_[index]->size();
  out->size_ = size_ - shards_[index]->size() + shard->size();
  out->shards_[index] = std::move(shard);
  if (out->size_ == 0) {
    out->filter_ = nullptr;
    return out;
  }
  // Growth adds the new shard's bits to a copy; a prune rebuilds from every shard.
  auto f = filter_ != nullptr && !shrank ? std::make_shared<Filter>(*filter_)
                                         : std::make_shared<Filter>(kFilterWords, 0);
  auto mark = [&f](uint64_t h) { Mark(f.get(), h); };
  if (filter_ != nullptr && !shrank) {
    out->shards_[index]->ForEachHash(mark);
  } else {
    for (const auto& s : out->shards_) s->ForEachHash(mark);
  }
  out->filter_ = std::move(f);
  return out;
}

bool RevocationList::RevokedSlow(absl::string_view token_id, absl::string_view subject,
                                 int64_t issued_at) const {
  // Both hashes and both filter words first (independent, so the CPU overlaps them); the
  // common answer, "neither may be held", then costs no map lookup.
  const uint64_t ht = HashOf('t', token_id), hs = HashOf('s', subject);
  const bool token_maybe = !token_id.empty() && MayHold(ht);
  const bool subject_maybe = !subject.empty() && MayHold(hs);
  if (!token_maybe && !subject_maybe) return false;
  if (token_maybe && shards_[ht % kRevocationShards]->FindToken(token_id).has_value()) {
    return true;
  }
  if (!subject_maybe) return false;
  const RevocationShard::Subject* s = shards_[hs % kRevocationShards]->FindSubject(subject);
  return s != nullptr && issued_at <= s->cutoff;
}

}  // namespace sessiontoken::engine
