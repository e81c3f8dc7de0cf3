#include "server/gateway/http_server.h"

#include <civetweb.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::gateway {
namespace {

std::optional<absl::string_view> Header(mg_connection* conn, const char* name) {
  const char* v = mg_get_header(conn, name);
  if (v == nullptr) return std::nullopt;
  return absl::string_view(v);
}

void Reply(mg_connection* conn, const HttpResponse& r) {
  mg_response_header_start(conn, r.status);
  mg_response_header_add(conn, "Content-Type", "application/json", -1);
  mg_response_header_add(conn, "Content-Length", std::to_string(r.body.size()).c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_send(conn);
  mg_write(conn, r.body.data(), r.body.size());
}

HttpResponse TooLarge(size_t limit) {
  HttpResponse r = ErrorResponse(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                   absl::StrCat("body: larger than the server's limit of ", limit, " bytes")));
  r.status = 413;
  return r;
}

// Reads the body; false when it is larger than `limit` (then *body is incomplete).
bool ReadBody(mg_connection* conn, long long content_length, size_t limit, std::string* body) {
  if (content_length > static_cast<long long>(limit)) return false;
  if (content_length > 0) body->reserve(static_cast<size_t>(content_length));
  char buf[8192];
  for (;;) {
    const int n = mg_read(conn, buf, sizeof buf);
    if (n <= 0) return true;
    if (body->size() + static_cast<size_t>(n) > limit) return false;
    body->append(buf, static_cast<size_t>(n));
  }
}

int LogCivetweb(const mg_connection*, const char* message) {
  std::fprintf(stderr, "WARNING http gateway: %s\n", message);
  return 1;  // handled: civetweb writes nothing itself
}

}  // namespace

void HttpServer::Serve(mg_connection* conn) const {
  const mg_request_info* info = mg_get_request_info(conn);
  std::string body;
  if (!ReadBody(conn, info->content_length, options_.max_body_bytes, &body)) {
    // civetweb discards the unread rest of the body before the connection's next request
    // (tests/integration/http_gateway_test.py checks nothing of it is taken as a request).
    Reply(conn, TooLarge(options_.max_body_bytes));
    return;
  }
  HttpRequest request;
  request.method = info->request_method != nullptr ? info->request_method : "";
  request.path = info->local_uri != nullptr ? info->local_uri : "";
  request.body = body;
  request.authorization = Header(conn, "Authorization");
  request.content_type = Header(conn, "Content-Type");
  request.peer = absl::StrCat("http:", info->remote_addr, ":", info->remote_port);
  Reply(conn, gateway_->Handle(request));
}

int HttpServer::HandleRequest(mg_connection* conn, void* self) {
  static_cast<const HttpServer*>(self)->Serve(conn);
  return 1;  // handled (civetweb keeps the connection alive when it can)
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              const JsonGateway* gateway) {
  mg_init_library(0);
  std::unique_ptr<HttpServer> server(new HttpServer(options, gateway));
  const std::string threads = std::to_string(options.threads);
  const std::string timeout = std::to_string(options.request_timeout_ms);
  const char* config[] = {"listening_ports",
                          options.listen.c_str(),
                          "num_threads",
                          threads.c_str(),
                          "request_timeout_ms",
                          timeout.c_str(),
                          "enable_keep_alive",
                          "yes",
                          "keep_alive_timeout_ms",
                          "60000",
                          "tcp_nodelay",
                          "1",
                          "enable_directory_listing",
                          "no",
                          nullptr};
  mg_callbacks callbacks = {};
  callbacks.log_message = &LogCivetweb;
  mg_init_data init = {&callbacks, server.get(), config};
  char error_text[256] = "";
  mg_error_data error = {nullptr, error_text, sizeof error_text};
  server->ctx_ = mg_start2(&init, &error);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("http gateway: cannot listen on ", options.listen, ": ", error_text));
  }
  mg_set_request_handler(server->ctx_, "/", &HttpServer::HandleRequest, server.get());
  mg_server_port ports[4] = {};
  if (mg_get_server_ports(server->ctx_, 4, ports) < 1 || ports[0].port <= 0) {
    return absl::UnavailableError(absl::StrCat("http gateway: no port bound for ", options.listen));
  }
  server->port_ = ports[0].port;
  return server;
}

void HttpServer::Stop() {
  if (ctx_ != nullptr) mg_stop(ctx_);
  ctx_ = nullptr;
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace sessiontoken::gateway
