// HttpServer: the HTTP/1.1 listener of the JSON gateway, on Debian's GNU libmicrohttpd (no
// hand-written HTTP parsing), plaintext or HTTPS through GnuTLS with the gRPC port's
// certificate files (reloaded when they change) and, with a client CA, required and
// verified client certificates whose SAN becomes the caller's identity. Reads each
// request's body within the message size limit and hands the request to a JsonGateway.
#ifndef SESSIONTOKEN_SERVER_GATEWAY_HTTP_SERVER_H_
#define SESSIONTOKEN_SERVER_GATEWAY_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/gateway/json_gateway.h"
#include "server/gateway/tls_credentials.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace sessiontoken::gateway {

struct HttpServerOptions {
  std::string listen;               // host:port; port 0 picks a free port
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413 RESOURCE_EXHAUSTED, not kept
  int threads = 16;                 // requests served at once
  int max_connections = 1024;       // open connections; more are closed when accepted
  absl::Duration idle_timeout = absl::Seconds(30);   // a silent connection is dropped
  absl::Duration drain_timeout = absl::Seconds(10);  // Stop() waits this long at most
  std::optional<TlsFiles> tls;                       // HTTPS (and mTLS with a client CA) when set
  TlsCredentials::Logger log;  // where warnings go (level, message); may be empty
};

class HttpServer {
 public:
  // Binds and starts serving `gateway` (which must outlive the server). Unavailable when
  // the address cannot be bound; the TLS files' errors (TlsCredentials::Load) as they are.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           const JsonGateway* gateway);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Stops accepting, waits (up to drain_timeout) for the requests in progress to be
  // answered, then closes every connection. Idempotent.
  void Stop();

  // libmicrohttpd's callbacks (`cls` is the HttpServer).
  struct Request;
  struct Connection;
  static int OnRequest(void* cls, MHD_Connection* conn, const char* url, const char* method,
                       const char* upload_data, size_t* upload_data_size, void** req_cls);
  static void OnCompleted(void* cls, void** req_cls);
  static void OnConnection(void* cls, MHD_Connection* conn, void** socket_context, bool started);

 private:
  HttpServer(const HttpServerOptions& options, const JsonGateway* gateway)
      : options_(options), gateway_(gateway) {}
  absl::Status StartDaemon(int listen_fd);
  // Answers a request whose body has been read.
  int Serve(MHD_Connection* conn, const char* url, const char* method, Request& req) const;

  const HttpServerOptions options_;
  const JsonGateway* gateway_;
  std::unique_ptr<TlsCredentials> tls_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // requests begun and not yet answered
};

}  // namespace sessiontoken::gateway

#endif  // SESSIONTOKEN_SERVER_GATEWAY_HTTP_SERVER_H_
