// JsonGateway: the HTTP/JSON door beside the gRPC services. Maps a request (method, path,
// JSON body, Authorization header) to the same SessionTokensService calls the gRPC handlers
// make, so request checks, authentication, per-keyring authorization and limits are the
// gRPC port's, and maps the result to an HTTP status and protobuf's JSON mapping of the
// response message. No HTTP parsing here (server/gateway/http_server.h does that).
//
// Routes: POST /v1/keyrings/{keyring}:sign | :verify | :batchSign | :batchVerify, and
// GET /healthz. Errors: {"code": "<gRPC code name>", "message": "..."} (docs/http-gateway.md).
#ifndef SESSIONTOKEN_SERVER_GATEWAY_JSON_GATEWAY_H_
#define SESSIONTOKEN_SERVER_GATEWAY_JSON_GATEWAY_H_

#include <grpcpp/support/status.h>

#include <atomic>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "server/service/auth.h"
#include "server/service/tokens_service.h"

namespace sessiontoken::gateway {

// One HTTP request, as the HTTP server read it. Views are valid during Handle().
struct HttpRequest {
  absl::string_view method;  // "GET", "POST", ...
  absl::string_view path;    // URL-decoded path, without the query string
  absl::string_view body;
  std::optional<absl::string_view> authorization;  // Authorization header, when present
  std::optional<absl::string_view> content_type;   // Content-Type header, when present
  std::string peer;                                // "http(s):<ip>:<port>", for the audit log
  // "uri:…" / "dns:…" from the verified client certificate (mTLS), else empty.
  std::string certificate_identity;
};

// The reply: an HTTP status and a JSON body (Content-Type: application/json).
struct HttpResponse {
  int status = 200;
  std::string body;
};

// The HTTP status of a gRPC status code (400 bad input, 401, 403, 404, 409, 413, 429,
// 500, 501, 503, 504).
int HttpStatusOf(grpc::StatusCode code);

// The JSON error reply of `status` (not OK): {"code": "INVALID_ARGUMENT", "message": ...}.
HttpResponse ErrorResponse(const grpc::Status& status);

class JsonGateway {
 public:
  // `tokens` and `auth` (may be null: no access control) must outlive the gateway.
  JsonGateway(const service::SessionTokensService* tokens, const service::Authorizer* auth)
      : tokens_(tokens), auth_(auth) {}

  HttpResponse Handle(const HttpRequest& request) const;

  // What GET /healthz answers: 200 SERVING, or 503 NOT_SERVING once draining.
  void SetServing(bool serving) { serving_.store(serving, std::memory_order_relaxed); }

 private:
  HttpResponse Health() const;
  // Parses the body as `Req`, binds the URL's keyring, identifies the caller and runs `call`
  // (a SessionTokensService Do* method) as the gRPC handler would.
  template <typename Req, typename Resp, typename Call>
  HttpResponse Run(const HttpRequest& request, absl::string_view keyring, Call call) const;
  service::Caller Identify(const HttpRequest& request) const;

  const service::SessionTokensService* tokens_;
  const service::Authorizer* auth_;
  std::atomic<bool> serving_{true};
};

}  // namespace sessiontoken::gateway

#endif  // SESSIONTOKEN_SERVER_GATEWAY_JSON_GATEWAY_H_
