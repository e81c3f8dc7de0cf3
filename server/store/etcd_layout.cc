#include "server/store/etcd_layout.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sessiontoken::store {
namespace {

constexpr absl::string_view kKeyringMagic = "STE1\n";
constexpr absl::string_view kPresenceMagic = "STP1 loaded_revision=";

}  // namespace

absl::StatusOr<EtcdLayout> EtcdLayout::New(std::string prefix) {
  if (prefix.empty() || prefix.front() != '/' || prefix.back() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd_prefix '", prefix, "': must start and end with '/'"));
  }
  return EtcdLayout(std::move(prefix));
}

std::string EtcdLayout::RangeEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(end.back() + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

absl::StatusOr<std::string> EtcdLayout::KeyringName(absl::string_view key) const {
  if (!absl::StartsWith(key, keyrings_)) {
    return absl::DataLossError(absl::StrCat("etcd key ", key, " is outside ", keyrings_));
  }
  absl::string_view name = key.substr(keyrings_.size());
  if (!ValidateRecordName(name).ok()) {
    return absl::DataLossError(
        absl::StrCat("etcd key ", key, " does not name a keyring; ignoring it"));
  }
  return std::string(name);
}

KeyringRecord EtcdLayout::ToRecord(const mvccpb::KeyValue& kv) const {
  KeyringRecord r;
  absl::StatusOr<std::string> name = KeyringName(kv.key());
  if (!name.ok()) {
    r.name = kv.key();
    r.status = name.status();
    return r;
  }
  r.name = *std::move(name);
  if (!absl::StartsWith(kv.value(), kKeyringMagic) || kv.mod_revision() <= 0) {
    r.status = absl::DataLossError(
        absl::StrCat("etcd key ", kv.key(), " (revision ", kv.mod_revision(),
                     ") does not hold a sessiontoken keyring record; refusing to use it"));
    return r;
  }
  r.blob.data = kv.value().substr(kKeyringMagic.size());
  r.blob.version = static_cast<uint64_t>(kv.mod_revision());
  return r;
}

std::string EtcdLayout::EncodeKeyring(absl::string_view blob) {
  return absl::StrCat(kKeyringMagic, blob);
}

std::string EtcdLayout::EncodePresence(int64_t loaded_revision) {
  return absl::StrCat(kPresenceMagic, loaded_revision, "\n");
}

absl::StatusOr<int64_t> EtcdLayout::DecodePresence(absl::string_view value) {
  int64_t revision = 0;
  if (!absl::ConsumePrefix(&value, kPresenceMagic) || !absl::ConsumeSuffix(&value, "\n") ||
      !absl::SimpleAtoi(value, &revision) || revision < 0) {
    return absl::DataLossError("not a sessiontoken presence record");
  }
  return revision;
}

absl::Status EtcdLayout::ValidateRecordName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 255 && name.front() != '.';
  for (char c : name) {
    ok = ok &&
         (absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z') || c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("store record name '", name,
                     "': need 1-255 characters of [a-z0-9._-], not starting "
                     "with '.'"));
  }
  return absl::OkStatus();
}

absl::Status EtcdLayout::ValidateReplicaId(absl::string_view id) {
  bool ok = !id.empty() && id.size() <= 128;
  for (char c : id) ok = ok && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica id '", id, "': need 1-128 characters of [A-Za-z0-9._-]"));
  }
  return absl::OkStatus();
}

}  // namespace sessiontoken::store
