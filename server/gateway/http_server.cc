#include "server/gateway/http_server.h"

#include <gnutls/abstract.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::gateway {

// One HTTP request being read.
struct HttpServer::Request {
  std::string body;
  bool too_large = false;  // the body outgrew the limit: the rest is discarded, 413
};

// One TCP (TLS) connection: the credentials its session uses, and its client
// certificate's identity, read at the first request.
struct HttpServer::Connection {
  std::shared_ptr<const TlsCredentials::Loaded> credentials;
  std::optional<std::string> certificate_identity;
};

namespace {

constexpr char kTlsPriorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

std::optional<absl::string_view> Header(MHD_Connection* conn, const char* name) {
  const char* v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
  if (v == nullptr) return std::nullopt;
  return absl::string_view(v);
}

MHD_Result Reply(MHD_Connection* conn, const HttpResponse& r) {
  MHD_Response* resp = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (resp == nullptr) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", "application/json");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  const MHD_Result queued = MHD_queue_response(conn, static_cast<unsigned int>(r.status), resp);
  MHD_destroy_response(resp);
  return queued;
}

HttpResponse TooLarge(size_t limit) {
  HttpResponse r = ErrorResponse(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                   absl::StrCat("body: larger than the server's limit of ", limit, " bytes")));
  r.status = 413;
  return r;
}

std::string PeerOf(MHD_Connection* conn, bool tls) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char host[NI_MAXHOST] = "?";
  char port[NI_MAXSERV] = "?";
  if (info != nullptr && info->client_addr != nullptr) {
    const socklen_t len =
        info->client_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    getnameinfo(info->client_addr, len, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
  }
  return absl::StrCat(tls ? "https:" : "http:", host, ":", port);
}

// A listening TCP socket on host:port (numeric address or a name such as localhost).
absl::StatusOr<int> Listen(const std::string& address) {
  const size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
  const std::string port = address.substr(colon == std::string::npos ? 0 : colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) return absl::UnavailableError(gai_strerror(rc));
  int fd = -1;
  int error = 0;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
      error = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) return absl::UnavailableError(std::strerror(error));
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr = {};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

MHD_Result Access(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                  const char* upload_data, size_t* upload_data_size, void** req_cls) {
  return static_cast<MHD_Result>(
      HttpServer::OnRequest(cls, conn, url, method, upload_data, upload_data_size, req_cls));
}

void Completed(void* cls, MHD_Connection*, void** req_cls, MHD_RequestTerminationCode) {
  HttpServer::OnCompleted(cls, req_cls);
}

void Notify(void* cls, MHD_Connection* conn, void** socket_context,
            MHD_ConnectionNotificationCode code) {
  HttpServer::OnConnection(cls, conn, socket_context, code == MHD_CONNECTION_NOTIFY_STARTED);
}

// libmicrohttpd's own credentials are never used: OnConnection gives every session the
// current TlsCredentials before its handshake. (It insists on a certificate source.)
int NoDaemonCertificate(gnutls_session_t, const gnutls_datum_t*, int, const gnutls_pk_algorithm_t*,
                        int, gnutls_pcert_st**, unsigned int*, gnutls_privkey_t*) {
  return -1;
}

void LogMhd(void* cls, const char* fmt, va_list ap) {
  char text[512];
  std::vsnprintf(text, sizeof text, fmt, ap);
  absl::string_view line(text);
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  // libmicrohttpd says this of every failed TLS handshake, whatever the cause.
  if (line == "Error: received handshake message out of context.") {
    line = "TLS handshake failed (not TLS, or no or an untrusted client certificate)";
  }
  const auto* log = static_cast<const TlsCredentials::Logger*>(cls);
  if (*log) (*log)("WARNING", absl::StrCat("http gateway: ", line));
}

}  // namespace

int HttpServer::OnRequest(void* cls, MHD_Connection* conn, const char* url, const char* method,
                          const char* upload_data, size_t* upload_data_size, void** req_cls) {
  auto* self = static_cast<HttpServer*>(cls);
  const size_t limit = self->options_.max_body_bytes;
  if (*req_cls == nullptr) {  // headers read, body not yet
    {
      absl::MutexLock lock(&self->mu_);
      ++self->in_flight_;
    }
    *req_cls = new Request();
    uint64_t length = 0;
    std::optional<absl::string_view> declared = Header(conn, "Content-Length");
    if (declared.has_value() && absl::SimpleAtoi(*declared, &length) && length > limit) {
      // Answered before the body is read; libmicrohttpd then closes the connection.
      return Reply(conn, TooLarge(limit));
    }
    return MHD_YES;
  }
  Request& req = *static_cast<Request*>(*req_cls);
  if (*upload_data_size > 0) {  // a piece of the body
    if (!req.too_large && req.body.size() + *upload_data_size <= limit) {
      req.body.append(upload_data, *upload_data_size);
    } else {  // chunked past the limit: the rest is read and dropped, never parsed
      req.too_large = true;
      req.body.clear();
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (req.too_large) return Reply(conn, TooLarge(limit));
  return self->Serve(conn, url, method, req);
}

int HttpServer::Serve(MHD_Connection* conn, const char* url, const char* method,
                      Request& req) const {
  HttpRequest request;
  request.method = method;
  request.path = url;
  request.body = req.body;
  request.authorization = Header(conn, "Authorization");
  request.content_type = Header(conn, "Content-Type");
  request.peer = PeerOf(conn, tls_ != nullptr);
  if (tls_ != nullptr && tls_->mtls()) {
    const MHD_ConnectionInfo* ctx =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    auto* c = ctx != nullptr ? static_cast<Connection*>(ctx->socket_context) : nullptr;
    if (c != nullptr && !c->certificate_identity.has_value()) {
      const MHD_ConnectionInfo* s =
          MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
      c->certificate_identity =
          s != nullptr ? TlsCredentials::PeerIdentity(static_cast<gnutls_session_t>(s->tls_session))
                       : std::string();
    }
    if (c != nullptr) request.certificate_identity = *c->certificate_identity;
  }
  return Reply(conn, gateway_->Handle(request));
}

void HttpServer::OnCompleted(void* cls, void** req_cls) {
  if (*req_cls == nullptr) return;
  delete static_cast<Request*>(*req_cls);
  *req_cls = nullptr;
  auto* self = static_cast<HttpServer*>(cls);
  absl::MutexLock lock(&self->mu_);
  --self->in_flight_;
}

void HttpServer::OnConnection(void* cls, MHD_Connection* conn, void** socket_context,
                              bool started) {
  auto* self = static_cast<HttpServer*>(cls);
  if (!started) {
    delete static_cast<Connection*>(*socket_context);
    *socket_context = nullptr;
    return;
  }
  if (self->tls_ == nullptr) return;
  // Called before the TLS handshake: the session takes the current credentials.
  const MHD_ConnectionInfo* s = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (s == nullptr || s->tls_session == nullptr) return;
  auto* c = new Connection();
  c->credentials = self->tls_->Attach(static_cast<gnutls_session_t>(s->tls_session));
  *socket_context = c;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              const JsonGateway* gateway) {
  std::unique_ptr<HttpServer> server(new HttpServer(options, gateway));
  if (options.tls.has_value()) {
    absl::StatusOr<std::unique_ptr<TlsCredentials>> tls =
        TlsCredentials::Load(*options.tls, options.log);
    if (!tls.ok()) return tls.status();
    server->tls_ = *std::move(tls);
  }
  absl::StatusOr<int> fd = Listen(options.listen);
  if (!fd.ok()) {
    return absl::UnavailableError(absl::StrCat("http gateway: cannot listen on ", options.listen,
                                               ": ", fd.status().message()));
  }
  server->port_ = BoundPort(*fd);
  if (absl::Status s = server->StartDaemon(*fd); !s.ok()) return s;
  return server;
}

absl::Status HttpServer::StartDaemon(int fd) {
  unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (tls_ != nullptr) flags |= MHD_USE_TLS;
  // The HTTPS options end the list on a plaintext daemon (libmicrohttpd warns about them).
  const MHD_OPTION https = tls_ != nullptr ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END;
  daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &Access, this, MHD_OPTION_EXTERNAL_LOGGER, &LogMhd,
      const_cast<TlsCredentials::Logger*>(&options_.log), MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned int>(options_.threads),
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(options_.max_connections),
      MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned int>(absl::ToInt64Seconds(options_.idle_timeout)),
      MHD_OPTION_NOTIFY_COMPLETED, &Completed, this, MHD_OPTION_NOTIFY_CONNECTION, &Notify, this,
      https, &NoDaemonCertificate, MHD_OPTION_HTTPS_PRIORITIES, kTlsPriorities, MHD_OPTION_END);
  if (daemon_ == nullptr) {
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("http gateway: cannot serve on ", options_.listen, " (see the log)"));
  }
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (daemon_ == nullptr) return;
  const MHD_socket listener = MHD_quiesce_daemon(daemon_);  // stop accepting
  if (listener != MHD_INVALID_SOCKET) close(listener);
  {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    mu_.AwaitWithTimeout(absl::Condition(&idle), options_.drain_timeout);
  }
  MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace sessiontoken::gateway
