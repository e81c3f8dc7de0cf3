#include "server/store/etcd_client.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace sessiontoken::store {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;  // a full load of many keyrings
constexpr absl::Duration kRoundBackoff = absl::Milliseconds(100);
constexpr int kMinConnectTimeoutMs = 5000;

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("etcd ", what, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const EtcdOptions& o) {
  if (o.ca_file.empty()) {
    if (!o.cert_file.empty() || !o.key_file.empty()) {
      return absl::InvalidArgumentError("etcd client certificate given without a CA file");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return absl::InvalidArgumentError("etcd client certificate and key must be given together");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadPem(o.ca_file, "CA file");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (!o.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(o.cert_file, "client certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(o.key_file, "client key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  // Connection attempts start again within a second of a failure, so a member that comes
  // back (its host refusing connections meanwhile) is used again within about a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // gRPC's name for the shortest time one connection attempt (TCP, TLS, HTTP/2 settings) is
  // given. At 100 ms, a busy member that had just restarted was never reached again (each
  // attempt timed out before its SETTINGS frame, for minutes); calls do not wait for it, they
  // have their own attempt deadline and move on to the next endpoint.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kMinConnectTimeoutMs);
  // Notice dead connections under long-lived streams (etcd allows pings every >= 5 s).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3000);
  return args;
}

// Transport failures, leader elections ("etcdserver: leader changed", "no leader",
// "request timed out") and overload: worth another attempt, possibly elsewhere.
bool Retriable(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

bool NeverSent(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE &&
         absl::StrContains(s.error_message(), "failed to connect");
}

bool InvalidToken(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         absl::StrContains(s.error_message(), "invalid auth token");
}

absl::Status FromGrpc(const grpc::Status& s, absl::string_view context) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(context, ": ", s.error_message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::New(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("etcd_endpoints: at least one host:port is required");
  }
  if (options.attempt_timeout <= absl::ZeroDuration() ||
      options.request_timeout < options.attempt_timeout) {
    return absl::InvalidArgumentError("etcd timeouts: need 0 < attempt_timeout <= request_timeout");
  }
  if (options.watch_progress_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd watch_progress_interval must be positive");
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = Credentials(options);
  if (!creds.ok()) return creds.status();
  std::unique_ptr<EtcdClient> c(new EtcdClient(std::move(options)));
  for (const std::string& address : c->options_.endpoints) {
    if (address.empty() || absl::StrContains(address, "://")) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint '", address, "': expected host:port"));
    }
    auto ep = std::make_unique<Endpoint>();
    ep->address = address;
    ep->channel = grpc::CreateCustomChannel(address, *creds, ChannelArgs());
    ep->kv = etcdserverpb::KV::NewStub(ep->channel);
    ep->watch = etcdserverpb::Watch::NewStub(ep->channel);
    ep->lease = etcdserverpb::Lease::NewStub(ep->channel);
    ep->auth = etcdserverpb::Auth::NewStub(ep->channel);
    c->endpoints_.push_back(std::move(ep));
  }
  c->endpoint_list_ = absl::StrJoin(c->options_.endpoints, ",");
  return c;
}

absl::Status EtcdClient::AddAuth(Endpoint& ep, grpc::ClientContext& ctx, absl::Time deadline) {
  if (options_.username.empty()) return absl::OkStatus();
  absl::MutexLock lock(&token_mu_);
  if (token_.empty()) {
    grpc::ClientContext auth_ctx;
    auth_ctx.set_deadline(absl::ToChronoTime(deadline));
    etcdserverpb::AuthenticateRequest req;
    req.set_name(options_.username);
    req.set_password(std::string(options_.password.view()));
    etcdserverpb::AuthenticateResponse resp;
    grpc::Status s = ep.auth->Authenticate(&auth_ctx, req, &resp);
    req.mutable_password()->assign(req.password().size(), '\0');
    if (!s.ok()) {
      return FromGrpc(s,
                      absl::StrCat("etcd ", ep.address, ": authentication as ", options_.username));
    }
    token_ = resp.token();
    ++authentications_;
  }
  ctx.AddMetadata("token", token_);
  return absl::OkStatus();
}

absl::Status EtcdClient::Call(absl::string_view what, const Attempt& attempt, bool* maybe_applied,
                              absl::Duration request_timeout, absl::Duration attempt_timeout) {
  if (request_timeout <= absl::ZeroDuration()) request_timeout = options_.request_timeout;
  if (attempt_timeout <= absl::ZeroDuration()) attempt_timeout = options_.attempt_timeout;
  const absl::Time deadline = absl::Now() + request_timeout;
  const size_t n = endpoints_.size();
  const size_t start = preferred_endpoint();
  size_t i = start;
  std::string last_error = "no attempt made";
  bool reauthenticated = false;
  for (int attempts = 0; attempts == 0 || absl::Now() < deadline; ++attempts) {
    Endpoint& ep = *endpoints_[i];
    grpc::ClientContext ctx;
    const absl::Time attempt_deadline = std::min(deadline, absl::Now() + attempt_timeout);
    ctx.set_deadline(absl::ToChronoTime(attempt_deadline));
    grpc::Status s;
    if (absl::Status a = AddAuth(ep, ctx, attempt_deadline); !a.ok()) {
      s = grpc::Status(static_cast<grpc::StatusCode>(a.code()), std::string(a.message()));
    } else {
      s = attempt(ep, ctx);
    }
    if (s.ok()) {
      preferred_.store(i, std::memory_order_relaxed);
      return absl::OkStatus();
    }
    if (InvalidToken(s) && !options_.username.empty() && !reauthenticated) {
      absl::MutexLock lock(&token_mu_);
      token_.clear();  // expired or revoked: authenticate again, once
      reauthenticated = true;
      continue;
    }
    if (!Retriable(s)) return FromGrpc(s, absl::StrCat("etcd ", ep.address, ": ", what));
    if (maybe_applied != nullptr && !NeverSent(s)) *maybe_applied = true;
    last_error = absl::StrCat(ep.address, ": ", s.error_message());
    i = (i + 1) % n;
    if (i == start) {
      absl::SleepFor(
          std::min(kRoundBackoff, std::max(absl::ZeroDuration(), deadline - absl::Now())));
    }
  }
  // A write whose request may have reached etcd can still be applied after this answer.
  const bool ambiguous = maybe_applied != nullptr && *maybe_applied;
  return absl::UnavailableError(
      absl::StrCat("etcd unreachable at ", endpoint_list_, " (", what, " gave up after ",
                   absl::FormatDuration(request_timeout), "; last error from ", last_error, ")",
                   ambiguous ? "; the change may still be applied once etcd answers: read it back "
                               "(e.g. sessiontoken keyrings get) before retrying"
                             : ""));
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::Range(
    const etcdserverpb::RangeRequest& req) {
  etcdserverpb::RangeResponse resp;
  absl::Status s = Call(
      "range",
      [&](Endpoint& ep, grpc::ClientContext& ctx) { return ep.kv->Range(&ctx, req, &resp); },
      nullptr);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::Txn(const etcdserverpb::TxnRequest& req,
                                                          bool* maybe_applied) {
  etcdserverpb::TxnResponse resp;
  absl::Status s = Call(
      "txn", [&](Endpoint& ep, grpc::ClientContext& ctx) { return ep.kv->Txn(&ctx, req, &resp); },
      maybe_applied);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<etcdserverpb::CompactionResponse> EtcdClient::Compact(int64_t revision) {
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  etcdserverpb::CompactionResponse resp;
  absl::Status s = Call(
      "compact",
      [&](Endpoint& ep, grpc::ClientContext& ctx) { return ep.kv->Compact(&ctx, req, &resp); },
      nullptr);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> EtcdClient::LeaseGrant(int64_t ttl_seconds) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  etcdserverpb::LeaseGrantResponse resp;
  absl::Status s = Call(
      "lease grant",
      [&](Endpoint& ep, grpc::ClientContext& ctx) {
        return ep.lease->LeaseGrant(&ctx, req, &resp);
      },
      nullptr);
  if (!s.ok()) return s;
  if (!resp.error().empty()) return absl::UnavailableError("etcd lease grant: " + resp.error());
  return resp;
}

absl::Status EtcdClient::LeaseRevoke(int64_t lease_id) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(lease_id);
  etcdserverpb::LeaseRevokeResponse resp;
  return Call(
      "lease revoke",
      [&](Endpoint& ep, grpc::ClientContext& ctx) {
        return ep.lease->LeaseRevoke(&ctx, req, &resp);
      },
      nullptr);
}

absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> EtcdClient::LeaseKeepAliveOnce(
    int64_t lease_id, absl::Duration within) {
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(lease_id);
  etcdserverpb::LeaseKeepAliveResponse resp;
  absl::Status s = Call(
      "lease keepalive",
      [&](Endpoint& ep, grpc::ClientContext& ctx) {
        auto stream = ep.lease->LeaseKeepAlive(&ctx);
        if (!stream->Write(req) || !stream->WritesDone() || !stream->Read(&resp)) {
          ctx.TryCancel();
          grpc::Status st = stream->Finish();
          return st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keepalive stream closed")
                         : st;
        }
        ctx.TryCancel();  // one round trip is all we need
        stream->Finish();
        return grpc::Status::OK;
      },
      nullptr, within > absl::ZeroDuration() ? std::min(within, options_.request_timeout) : within,
      within > absl::ZeroDuration() ? std::min(within / 3, options_.attempt_timeout) : within);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<std::unique_ptr<grpc::ClientContext>> EtcdClient::NewStreamContext(size_t index) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  // etcd then cancels the stream when this member loses its leader (a partitioned member
  // would otherwise keep serving a watch that silently stopped seeing changes).
  ctx->AddMetadata("hasleader", "true");
  absl::Status s = AddAuth(*endpoints_[index], *ctx, absl::Now() + options_.attempt_timeout);
  if (!s.ok()) return s;
  return ctx;
}

etcdserverpb::Watch::Stub& EtcdClient::WatchStub(size_t index) { return *endpoints_[index]->watch; }

}  // namespace sessiontoken::store
