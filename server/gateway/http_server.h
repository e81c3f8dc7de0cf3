// HttpServer: the HTTP/1.1 listener of the JSON gateway, on Debian's civetweb (no
// hand-written HTTP parsing). Reads each request's body within the message size limit and
// hands the request to a JsonGateway; plaintext only (docs/http-gateway.md says why and
// how to put TLS in front).
#ifndef SESSIONTOKEN_SERVER_GATEWAY_HTTP_SERVER_H_
#define SESSIONTOKEN_SERVER_GATEWAY_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/gateway/json_gateway.h"

struct mg_context;
struct mg_connection;

namespace sessiontoken::gateway {

struct HttpServerOptions {
  std::string listen;               // host:port; port 0 picks a free port
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413 RESOURCE_EXHAUSTED, not read
  int threads = 16;                 // requests served at once
  int request_timeout_ms = 30000;   // a client that stalls mid-request is dropped
};

class HttpServer {
 public:
  // Binds and starts serving `gateway` (which must outlive the server). Unavailable when
  // the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           const JsonGateway* gateway);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Stops accepting, waits for the requests in progress to finish. Idempotent.
  void Stop();

 private:
  HttpServer(const HttpServerOptions& options, const JsonGateway* gateway)
      : options_(options), gateway_(gateway) {}
  static int HandleRequest(mg_connection* conn, void* self);
  void Serve(mg_connection* conn) const;

  const HttpServerOptions options_;
  const JsonGateway* gateway_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace sessiontoken::gateway

#endif  // SESSIONTOKEN_SERVER_GATEWAY_HTTP_SERVER_H_
