#include "server/store/etcd_store.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/store/etcd_presence.h"
#include "server/store/etcd_watch.h"

namespace sessiontoken::store {
namespace {

etcdserverpb::RangeRequest PrefixRange(const std::string& prefix, bool keys_only) {
  etcdserverpb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(EtcdLayout::RangeEnd(prefix));
  r.set_keys_only(keys_only);
  return r;
}

void AddCompare(etcdserverpb::TxnRequest& txn, const std::string& key,
                etcdserverpb::Compare::CompareTarget target,
                etcdserverpb::Compare::CompareResult result, int64_t revision) {
  auto* c = txn.add_compare();
  c->set_key(key);
  c->set_target(target);
  c->set_result(result);
  if (target == etcdserverpb::Compare::CREATE) {
    c->set_create_revision(revision);
  } else {
    c->set_mod_revision(revision);
  }
}

// What changed between the presence set a promotion was checked against and now.
std::string DescribePresenceChange(const PresenceSet& listed,
                                   const etcdserverpb::RangeResponse& now,
                                   const EtcdLayout& layout) {
  std::map<std::string, int64_t> before, after;
  for (const PresenceEntry& e : listed.replicas) before[e.replica_id] = e.mod_revision;
  for (const mvccpb::KeyValue& kv : now.kvs()) {
    after[kv.key().substr(layout.presence_prefix().size())] = kv.mod_revision();
  }
  std::vector<std::string> joined, left, changed;
  for (const auto& [id, rev] : after) {
    auto it = before.find(id);
    if (it == before.end()) {
      joined.push_back(id);
    } else if (it->second != rev) {
      changed.push_back(id);
    }
  }
  for (const auto& [id, rev] : before) {
    if (!after.contains(id)) left.push_back(id);
  }
  return absl::StrCat("replicas changed since revision ", listed.revision, " (joined: [",
                      absl::StrJoin(joined, ","), "], left: [", absl::StrJoin(left, ","),
                      "], re-announced: [", absl::StrJoin(changed, ","),
                      "]); list the replicas again and re-check their loaded revisions");
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::New(EtcdOptions options) {
  absl::StatusOr<EtcdLayout> layout = EtcdLayout::New(options.prefix);
  if (!layout.ok()) return layout.status();
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = EtcdClient::New(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<EtcdStore>(new EtcdStore(*std::move(client), *std::move(layout)));
}

absl::StatusOr<std::vector<std::string>> EtcdStore::List() {
  absl::StatusOr<etcdserverpb::RangeResponse> r =
      client_->Range(PrefixRange(layout_.keyrings_prefix(), /*keys_only=*/true));
  if (!r.ok()) return r.status();
  std::vector<std::string> names;
  for (const mvccpb::KeyValue& kv : r->kvs()) {
    absl::StatusOr<std::string> name = layout_.KeyringName(kv.key());
    if (name.ok()) names.push_back(*std::move(name));  // foreign keys: see LoadAll
  }
  return names;  // etcd returns keys sorted
}

absl::StatusOr<VersionedBlob> EtcdStore::Get(absl::string_view name) {
  if (absl::Status s = EtcdLayout::ValidateRecordName(name); !s.ok()) return s;
  etcdserverpb::RangeRequest req;
  req.set_key(layout_.KeyringKey(name));
  absl::StatusOr<etcdserverpb::RangeResponse> r = client_->Range(req);
  if (!r.ok()) return r.status();
  if (r->kvs_size() == 0) return absl::NotFoundError(absl::StrCat("keyring ", name, " not stored"));
  KeyringRecord rec = layout_.ToRecord(r->kvs(0));
  if (!rec.status.ok()) return rec.status;
  return std::move(rec.blob);
}

absl::StatusOr<uint64_t> EtcdStore::Put(absl::string_view name, absl::string_view data,
                                        uint64_t expected_version) {
  return CasPut(name, data, expected_version, etcdserverpb::TxnRequest(), nullptr);
}

absl::StatusOr<uint64_t> EtcdStore::PutIfPresenceUnchanged(absl::string_view name,
                                                           absl::string_view data,
                                                           uint64_t expected_version,
                                                           const PresenceSet& presence) {
  if (presence.revision <= 0) {
    return absl::InvalidArgumentError("presence set must come from ListPresence");
  }
  etcdserverpb::TxnRequest txn;
  for (const PresenceEntry& e : presence.replicas) {
    AddCompare(txn, layout_.PresenceKey(e.replica_id), etcdserverpb::Compare::MOD,
               etcdserverpb::Compare::EQUAL, e.mod_revision);
  }
  AddCompare(txn, layout_.presence_prefix(), etcdserverpb::Compare::CREATE,
             etcdserverpb::Compare::LESS, presence.revision + 1);
  txn.mutable_compare()->rbegin()->set_range_end(EtcdLayout::RangeEnd(layout_.presence_prefix()));
  return CasPut(name, data, expected_version, std::move(txn), &presence);
}

absl::StatusOr<uint64_t> EtcdStore::CasPut(absl::string_view name, absl::string_view data,
                                           uint64_t expected_version, etcdserverpb::TxnRequest txn,
                                           const PresenceSet* presence) {
  if (absl::Status s = EtcdLayout::ValidateRecordName(name); !s.ok()) return s;
  if (data.size() > kMaxValueBytes) {
    return absl::InvalidArgumentError(absl::StrCat("keyring ", name, ": ", data.size(),
                                                   " bytes sealed, over the etcd store's limit of ",
                                                   kMaxValueBytes));
  }
  const std::string key = layout_.KeyringKey(name);
  const std::string value = EtcdLayout::EncodeKeyring(data);
  if (expected_version == 0) {
    AddCompare(txn, key, etcdserverpb::Compare::CREATE, etcdserverpb::Compare::EQUAL, 0);
  } else {
    AddCompare(txn, key, etcdserverpb::Compare::MOD, etcdserverpb::Compare::EQUAL,
               static_cast<int64_t>(expected_version));
  }
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  // failure(0) is the keyring's current value, failure(1) (promotion) the presence keys.
  txn.add_failure()->mutable_request_range()->set_key(key);
  if (presence != nullptr) {
    *txn.add_failure()->mutable_request_range() =
        PrefixRange(layout_.presence_prefix(), /*keys_only=*/true);
  }
  bool maybe_applied = false;
  absl::StatusOr<etcdserverpb::TxnResponse> resp = client_->Txn(txn, &maybe_applied);
  if (!resp.ok()) return resp.status();
  if (resp->succeeded()) return static_cast<uint64_t>(resp->header().revision());
  const etcdserverpb::RangeResponse& cur = resp->responses(0).response_range();
  const int64_t found = cur.kvs_size() > 0 ? cur.kvs(0).mod_revision() : 0;
  if (maybe_applied && found > 0 && cur.kvs(0).value() == value) {
    return static_cast<uint64_t>(found);  // our own write; its answer was lost on the way
  }
  if (found != static_cast<int64_t>(expected_version) || presence == nullptr) {
    return absl::AbortedError(absl::StrCat("keyring ", name,
                                           " changed concurrently (expected revision ",
                                           expected_version, ", found ", found, ")"));
  }
  return absl::AbortedError(absl::StrCat(
      "keyring ", name, " not written: ",
      DescribePresenceChange(*presence, resp->responses(1).response_range(), layout_)));
}

absl::StatusOr<StoreSnapshot> EtcdStore::LoadAll() {
  absl::StatusOr<etcdserverpb::RangeResponse> r =
      client_->Range(PrefixRange(layout_.keyrings_prefix(), /*keys_only=*/false));
  if (!r.ok()) return r.status();
  StoreSnapshot snap;
  snap.revision = r->header().revision();
  for (const mvccpb::KeyValue& kv : r->kvs()) {
    if (!layout_.KeyringName(kv.key()).ok()) {
      snap.foreign_keys.push_back(kv.key());
      continue;
    }
    snap.keyrings.push_back(layout_.ToRecord(kv));
  }
  return snap;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> EtcdStore::Watch(int64_t start_revision,
                                                              WatchListener* listener) {
  if (start_revision <= 0 || listener == nullptr) {
    return absl::InvalidArgumentError("watch: need a start revision > 0 and a listener");
  }
  return std::unique_ptr<WatchHandle>(EtcdWatch::Start(client_, layout_, start_revision, listener,
                                                       client_->options().watch_progress_interval));
}

absl::StatusOr<std::unique_ptr<PresenceLease>> EtcdStore::JoinPresence(
    const std::string& replica_id, absl::Duration ttl, int64_t loaded_revision) {
  absl::StatusOr<std::unique_ptr<EtcdPresence>> p =
      EtcdPresence::Join(client_, layout_, replica_id, ttl, loaded_revision);
  if (!p.ok()) return p.status();
  return std::unique_ptr<PresenceLease>(*std::move(p));
}

absl::StatusOr<PresenceSet> EtcdStore::ListPresence() {
  absl::StatusOr<etcdserverpb::RangeResponse> r =
      client_->Range(PrefixRange(layout_.presence_prefix(), /*keys_only=*/false));
  if (!r.ok()) return r.status();
  PresenceSet set;
  set.revision = r->header().revision();
  for (const mvccpb::KeyValue& kv : r->kvs()) {
    PresenceEntry e;
    e.replica_id = kv.key().substr(layout_.presence_prefix().size());
    absl::StatusOr<int64_t> loaded = EtcdLayout::DecodePresence(kv.value());
    e.loaded_revision = loaded.ok() ? *loaded : -1;
    e.mod_revision = kv.mod_revision();
    e.create_revision = kv.create_revision();
    set.replicas.push_back(std::move(e));
  }
  return set;
}

}  // namespace sessiontoken::store
