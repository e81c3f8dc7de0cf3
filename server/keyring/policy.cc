#include "server/keyring/policy.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::keyring {
namespace {

absl::Duration D(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

struct Schedule {
  explicit Schedule(const v1::KeyringPolicy& p)
      : period(D(p.rotation_period())),
        lead(D(p.stage_lead_time())),
        window(D(p.verify_window())),
        destroy_after(D(p.destroy_after())) {}
  absl::Duration period, lead, window, destroy_after;
};

// True when `id` was already STAGED in `original` (the snapshot before this pass).
bool StagedBefore(const Keyring& original, uint32_t id) {
  const Key* key = original.Find(id);
  return key != nullptr && key->state() == v1::STAGED;
}

// The next single transition due on `k` at `now`, or nullopt when none is. With
// `stage_only`, a new key is never made primary in the pass that creates it, and only keys
// already staged in `original` are promoted.
std::optional<absl::StatusOr<KeyringPtr>> NextDue(const Keyring& original, const Keyring& k,
                                                  const Schedule& s, absl::Time now,
                                                  bool stage_only, Transition* t) {
  for (const auto& key : k.keys()) {  // 1. promote a staged key after the lead time
    if (key->state() == v1::STAGED && key->metadata().state_changed_at + s.lead <= now &&
        (!stage_only || StagedBefore(original, key->id()))) {
      *t = {"promote", key->id()};
      return Promote(k, key->id(), now);
    }
  }
  if (s.period > absl::ZeroDuration()) {  // 2. stage/rotate a due primary
    const bool staged = std::any_of(k.keys().begin(), k.keys().end(),
                                    [](const auto& x) { return x->state() == v1::STAGED; });
    if (!staged && k.primary().metadata().state_changed_at + s.period - s.lead <= now) {
      const bool promote = s.lead == absl::ZeroDuration() && !stage_only;
      *t = {promote ? "rotate" : "stage", 0};
      return Rotate(k, now, promote, &t->key_id);
    }
  }
  for (const auto& key : k.keys()) {  // 3. disable after the window; 4. destroy
    const absl::Time since = key->metadata().state_changed_at;
    if (s.window > absl::ZeroDuration() && key->state() == v1::ACTIVE && since + s.window <= now) {
      *t = {"disable", key->id()};
      return Disable(k, key->id(), now);
    }
    if (s.destroy_after > absl::ZeroDuration() && key->state() == v1::DISABLED &&
        since + s.destroy_after <= now) {
      *t = {"destroy", key->id()};
      return Destroy(k, key->id(), now);
    }
  }
  return std::nullopt;
}

// The ids of the tombstones of `k` to prune at `now`: those past the retention, then the
// oldest beyond kMaxTombstones.
std::vector<uint32_t> DueTombstones(const Keyring& k, absl::Time now) {
  const absl::Duration retention = TombstoneRetention(k.policy());
  std::vector<uint32_t> due;
  std::vector<const Key*> kept;
  for (const auto& key : k.keys()) {
    if (key->state() != v1::DESTROYED) continue;
    if (key->metadata().state_changed_at + retention <= now) {
      due.push_back(key->id());
    } else {
      kept.push_back(key.get());
    }
  }
  if (kept.size() > kMaxTombstones) {
    std::stable_sort(kept.begin(), kept.end(), [](const Key* a, const Key* b) {
      return a->metadata().state_changed_at > b->metadata().state_changed_at;
    });
    for (size_t i = kMaxTombstones; i < kept.size(); ++i) due.push_back(kept[i]->id());
  }
  return due;
}

// `k` without the tombstones due at `now` (one "prune" each in *applied), or null when none.
absl::StatusOr<KeyringPtr> PruneTombstones(const Keyring& k, absl::Time now,
                                           std::vector<Transition>* applied) {
  const std::vector<uint32_t> due = DueTombstones(k, now);
  if (due.empty()) return KeyringPtr();
  const absl::flat_hash_set<uint32_t> gone(due.begin(), due.end());
  Keyring::Keys keys;
  keys.reserve(k.keys().size() - due.size());
  for (const auto& key : k.keys()) {
    if (!gone.contains(key->id())) keys.push_back(key);
  }
  for (uint32_t id : due) applied->push_back({"prune", id});
  return k.Next(std::move(keys));
}

}  // namespace

absl::Duration TombstoneRetention(const v1::KeyringPolicy& policy) {
  const absl::Duration d = D(policy.tombstone_retention());
  return d > absl::ZeroDuration() ? d : kDefaultTombstoneRetention;
}

absl::Status ValidatePolicy(const v1::KeyringPolicy& p, absl::Duration server_max_ttl) {
  struct Field {
    const char* name;
    const google::protobuf::Duration& d;
  } fields[] = {
      {"rotation_period", p.rotation_period()}, {"stage_lead_time", p.stage_lead_time()},
      {"verify_window", p.verify_window()},     {"destroy_after", p.destroy_after()},
      {"max_token_ttl", p.max_token_ttl()},     {"tombstone_retention", p.tombstone_retention()}};
  for (const Field& f : fields) {
    if (f.d.seconds() < 0 || f.d.nanos() != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy.", f.name, ": must be whole, non-negative seconds"));
    }
  }
  const Schedule s(p);
  const absl::Duration ttl = D(p.max_token_ttl());
  if (s.period > absl::ZeroDuration() && s.lead >= s.period) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.stage_lead_time: ", absl::FormatDuration(s.lead),
                     " must be shorter than rotation_period ", absl::FormatDuration(s.period)));
  }
  if (ttl > server_max_ttl) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.max_token_ttl: ", absl::FormatDuration(ttl),
                     " exceeds the server's limit ", absl::FormatDuration(server_max_ttl)));
  }
  const absl::Duration effective_ttl = ttl > absl::ZeroDuration() ? ttl : server_max_ttl;
  if (s.window > absl::ZeroDuration() && effective_ttl > s.window) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy.max_token_ttl: ", absl::FormatDuration(effective_ttl),
        ttl > absl::ZeroDuration() ? "" : " (the server's limit, as max_token_ttl is 0)",
        " exceeds verify_window ", absl::FormatDuration(s.window),
        ": tokens would outlive their key"));
  }
  return absl::OkStatus();
}

absl::Duration MaxTtl(const v1::KeyringPolicy& policy, absl::Duration server_max) {
  const absl::Duration ttl = D(policy.max_token_ttl());
  return ttl > absl::ZeroDuration() && ttl < server_max ? ttl : server_max;
}

absl::Status CheckSealable(const v1::KeyringPolicy& policy, Algorithm primary,
                           absl::string_view keyring) {
  if (!policy.seal_payloads() || primary != v1::HMAC_SHA1_FLASK) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "policy.seal_payloads: keyring ", keyring,
      " signs Flask-format cookies, which cannot carry a sealed payload; rotate to a native "
      "(HMAC_SHA256) key first"));
}

absl::StatusOr<KeyringPtr> WithPolicy(const Keyring& k, const v1::KeyringPolicy& policy,
                                      absl::Duration server_max_ttl) {
  if (absl::Status s = ValidatePolicy(policy, server_max_ttl); !s.ok()) return s;
  if (absl::Status s = CheckSealable(policy, k.primary().algorithm(), k.name()); !s.ok()) {
    return s;
  }
  return k.Next(k.keys(), policy);
}

std::vector<ScheduledTransition> Scheduled(const Keyring& k) {
  const Schedule s(k.policy());
  const bool staged = std::any_of(k.keys().begin(), k.keys().end(),
                                  [](const auto& x) { return x->state() == v1::STAGED; });
  std::vector<ScheduledTransition> out;
  for (const auto& key : k.keys()) {
    const absl::Time since = key->metadata().state_changed_at;
    switch (key->state()) {
      case v1::STAGED:
        out.push_back({"promote", key->id(), since + s.lead});
        break;
      case v1::PRIMARY:
        if (s.period > absl::ZeroDuration() && !staged) {
          out.push_back({s.lead == absl::ZeroDuration() ? "rotate" : "stage", key->id(),
                         since + s.period - s.lead});
        }
        break;
      case v1::ACTIVE:
        if (s.window > absl::ZeroDuration())
          out.push_back({"disable", key->id(), since + s.window});
        break;
      case v1::DISABLED:
        if (s.destroy_after > absl::ZeroDuration()) {
          out.push_back({"destroy", key->id(), since + s.destroy_after});
        }
        break;
      default:
        break;
    }
  }
  return out;
}

absl::StatusOr<KeyringPtr> ApplyDue(const Keyring& k, absl::Time now,
                                    std::vector<Transition>* applied, bool stage_only) {
  const Schedule schedule(k.policy());
  KeyringPtr cur;  // null: unchanged so far
  // Bounded: each pass applies at most one transition per key plus one rotation.
  for (int guard = 0; guard < 64; ++guard) {
    Transition t;
    std::optional<absl::StatusOr<KeyringPtr>> next =
        NextDue(k, cur ? *cur : k, schedule, now, stage_only, &t);
    if (!next.has_value()) break;
    if (!next->ok()) return next->status();
    cur = **std::move(next);
    applied->push_back(std::move(t));
  }
  absl::StatusOr<KeyringPtr> pruned = PruneTombstones(cur ? *cur : k, now, applied);
  if (!pruned.ok()) return pruned.status();
  if (*pruned != nullptr) cur = *std::move(pruned);
  if (cur == nullptr) return KeyringPtr();
  // Collapse the intermediate revisions: one committed change.
  return Keyring::New(k.name(), k.revision() + 1, k.created_at(), cur->keys(), k.policy());
}

}  // namespace sessiontoken::keyring
