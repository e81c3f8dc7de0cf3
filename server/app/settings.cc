#include "server/app/settings.h"

#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/config/config.h"
#include "server/metrics/listener.h"

namespace sessiontoken::app {
namespace {

absl::Duration D(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}
void Set(std::string* out, const std::string& v) {
  if (!v.empty()) *out = v;
}
void Set(absl::Duration* out, bool has, const google::protobuf::Duration& v) {
  if (has) *out = D(v);
}
void Set(int32_t* out, int32_t v) {
  if (v != 0) *out = v;
}

// After a proto merge, a Duration the command line set to zero has not replaced the file's
// (merging copies only non-zero fields): copy every Duration the command line set, at any
// depth.
void OverrideDurations(const google::protobuf::Message& from, google::protobuf::Message* to) {
  const google::protobuf::Reflection* r = from.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(from, &fields);
  for (const google::protobuf::FieldDescriptor* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      continue;
    }
    google::protobuf::Message* dest = to->GetReflection()->MutableMessage(to, f);
    if (f->message_type()->full_name() == "google.protobuf.Duration") {
      dest->CopyFrom(r->GetMessage(from, f));
    } else {
      OverrideDurations(r->GetMessage(from, f), dest);
    }
  }
}

absl::Status CheckEtcd(const Settings& s) {
  if (s.store != "file" && s.store != "etcd") {
    return absl::InvalidArgumentError(
        absl::StrCat("store: \"", s.store, "\" is neither \"file\" nor \"etcd\""));
  }
  if (s.store != "etcd") return absl::OkStatus();
  const EtcdSettings& e = s.etcd;
  if (e.endpoints.empty()) {
    return absl::InvalidArgumentError("etcd_endpoints: required with store \"etcd\"");
  }
  if (e.cert_file.empty() != e.key_file.empty()) {
    return absl::InvalidArgumentError("etcd_cert_file and etcd_key_file must be given together");
  }
  if (!e.password_file.empty() && e.username.empty()) {
    return absl::InvalidArgumentError("etcd_password_file needs etcd_user");
  }
  if (e.presence_ttl < absl::Seconds(2)) {
    return absl::InvalidArgumentError("presence_ttl: at least 2s");
  }
  if (e.resync_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("resync_interval: must not be negative");
  }
  return absl::OkStatus();
}

void ResolveEtcd(const v1::EtcdConfig& c, EtcdSettings* e) {
  e->endpoints.assign(c.endpoints().begin(), c.endpoints().end());
  Set(&e->prefix, c.prefix());
  Set(&e->ca_file, c.ca_file());
  Set(&e->cert_file, c.cert_file());
  Set(&e->key_file, c.key_file());
  Set(&e->username, c.username());
  Set(&e->password_file, c.password_file());
  Set(&e->replica_id, c.replica_id());
  Set(&e->presence_ttl, c.has_presence_ttl(), c.presence_ttl());
  Set(&e->resync_interval, c.has_resync_interval(), c.resync_interval());
}

absl::Status CheckSettings(const Settings& s) {
  if (absl::Status st = engine::ValidateLimits(s.limits); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("limits.", st.message()));
  }
  if (s.max_batch_items < 0 || s.max_message_bytes < 0 || s.max_concurrent_streams < 0) {
    return absl::InvalidArgumentError("limits: counts must not be negative");
  }
  for (absl::Duration d : {s.shutdown_grace, s.scheduler_interval, s.admin_deadline,
                           s.tls.reload_interval, s.max_connection_age}) {
    if (d < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("durations must not be negative");
    }
  }
  // gRPC takes the age as int milliseconds.
  if (s.max_connection_age > absl::Milliseconds(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("max_connection_age must be at most 24 days");
  }
  if (!s.http_listen.empty()) {
    const size_t colon = s.http_listen.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == s.http_listen.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("http_listen: \"", s.http_listen, "\" is not host:port"));
    }
    if (s.http_listen == s.listen && s.http_listen.substr(colon + 1) != "0") {
      return absl::InvalidArgumentError("http_listen: must differ from listen");
    }
  }
  if (s.tls.cert_file.empty() != s.tls.key_file.empty()) {
    return absl::InvalidArgumentError("tls_cert and tls_key must be given together");
  }
  if (s.tls.cert_file.empty() && !s.tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError("tls_client_ca needs tls_cert and tls_key");
  }
  return CheckEtcd(s);
}

}  // namespace

absl::StatusOr<Settings> ResolveSettings(const v1::ServerConfig& file,
                                         const CommandLine& command_line) {
  v1::ServerConfig c = file;
  c.MergeFrom(command_line.given);  // set fields of the command line win
  OverrideDurations(command_line.given, &c);
  Settings s;
  Set(&s.listen, c.listen());
  Set(&s.http_listen, c.http_listen());
  Set(&s.data_dir, c.data_dir());
  Set(&s.kek_file, c.kek_file());
  Set(&s.kek_env, c.kek_env());
  // Given on the command line, the list replaces the file's (a merge would append).
  const auto& previous = command_line.given.previous_kek_files().empty()
                             ? file.previous_kek_files()
                             : command_line.given.previous_kek_files();
  s.previous_kek_files.assign(previous.begin(), previous.end());
  s.dev_kek = command_line.dev_kek;
  s.insecure = c.insecure();
  s.allow_unauthenticated = c.allow_unauthenticated();
  Set(&s.shutdown_grace, c.has_shutdown_grace(), c.shutdown_grace());
  Set(&s.scheduler_interval, c.has_scheduler_interval(), c.scheduler_interval());
  Set(&s.admin_deadline, c.has_admin_deadline(), c.admin_deadline());
  Set(&s.max_connection_age, c.has_max_connection_age(), c.max_connection_age());
  Set(&s.default_keyring, c.default_keyring());
  if (command_line.no_default_keyring) s.default_keyring.clear();
  Set(&s.audit_log, c.audit_log());
  s.limits = config::ToLimits(c.limits());
  Set(&s.max_batch_items, c.limits().max_batch_items());
  Set(&s.max_message_bytes, c.limits().max_message_bytes());
  Set(&s.max_concurrent_streams, c.limits().max_concurrent_streams());
  Set(&s.tls.cert_file, c.tls().cert_file());
  Set(&s.tls.key_file, c.tls().key_file());
  Set(&s.tls.client_ca_file, c.tls().client_ca_file());
  Set(&s.tls.reload_interval, c.tls().has_reload_interval(), c.tls().reload_interval());
  s.auth = c.auth();
  s.keyrings.assign(c.keyrings().begin(), c.keyrings().end());
  s.accept_rollback = command_line.accept_rollback;
  Set(&s.store, c.store());
  // Endpoints given on the command line replace the file's list (a merge would append).
  if (!command_line.given.etcd().endpoints().empty()) {
    c.mutable_etcd()->mutable_endpoints()->CopyFrom(command_line.given.etcd().endpoints());
  }
  ResolveEtcd(c.etcd(), &s.etcd);
  Set(&s.metrics_listen, c.metrics_listen());
  if (!s.metrics_listen.empty()) {
    if (absl::Status st = metrics::ValidateListenAddress(s.metrics_listen); !st.ok()) return st;
  }
  absl::StatusOr<LogFormat> format = ParseLogFormat(c.log_format());
  if (!format.ok()) return format.status();
  s.log_format = *format;
  s.log_calls = command_line.log_calls;
  if (absl::Status st = CheckSettings(s); !st.ok()) return st;
  return s;
}

}  // namespace sessiontoken::app
