#include "server/gateway/json_gateway.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sessiontoken::gateway {
namespace {

using ::google::protobuf::util::JsonParseOptions;
using ::google::protobuf::util::JsonPrintOptions;

constexpr absl::string_view kKeyringsPrefix = "/v1/keyrings/";

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

HttpResponse JsonOf(int status, const google::protobuf::Message& message) {
  JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // "refreshRecommended": false, "keyId": 0
  HttpResponse r;
  r.status = status;
  if (!google::protobuf::util::MessageToJsonString(message, &r.body, options).ok()) {
    r.status = 500;
    r.body = R"({"code":"INTERNAL","message":"cannot encode the response"})";
  }
  return r;
}

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

template <typename Req>
grpc::Status ParseBody(absl::string_view body, Req* req) {
  JsonParseOptions options;
  options.ignore_unknown_fields = false;  // a misspelt field is an error, not a default
  const auto s = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), req, options);
  if (!s.ok()) {
    return Invalid(absl::StrCat("body: not a valid JSON ", Req::descriptor()->name(), ": ",
                                absl::string_view(s.message().data(), s.message().size())));
  }
  return grpc::Status::OK;
}

// The URL names the keyring; a body may repeat it, but not name another one.
template <typename Item>
grpc::Status BindKeyring(absl::string_view keyring, Item* item) {
  if (item->keyring().empty()) {
    item->set_keyring(std::string(keyring));
  } else if (item->keyring() != keyring) {
    return Invalid(absl::StrCat("keyring: the body names \"", item->keyring(),
                                "\" but the URL names \"", keyring, "\""));
  }
  return grpc::Status::OK;
}
template <typename Batch>
grpc::Status BindBatchKeyring(absl::string_view keyring, Batch* batch) {
  for (auto& item : *batch->mutable_items()) {
    if (grpc::Status s = BindKeyring(keyring, &item); !s.ok()) return s;
  }
  return grpc::Status::OK;
}
grpc::Status BindKeyring(absl::string_view k, v1::BatchSignRequest* b) {
  return BindBatchKeyring(k, b);
}
grpc::Status BindKeyring(absl::string_view k, v1::BatchVerifyRequest* b) {
  return BindBatchKeyring(k, b);
}

// A browser's cross-site "simple request" cannot carry application/json without a CORS
// preflight, which the gateway never grants.
bool IsJson(std::optional<absl::string_view> content_type) {
  if (!content_type.has_value()) return false;
  absl::string_view media = content_type->substr(0, content_type->find(';'));
  return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(media), "application/json");
}

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

HttpResponse ErrorResponse(const grpc::Status& status) {
  // Messages may quote what the caller sent (a keyring name from the URL): JSON strings
  // must be UTF-8, so bytes outside ASCII are shown as '?'.
  std::string message = status.error_message();
  for (char& c : message) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  google::protobuf::Struct error;
  (*error.mutable_fields())["code"].set_string_value(CodeName(status.error_code()));
  (*error.mutable_fields())["message"].set_string_value(message);
  return JsonOf(HttpStatusOf(status.error_code()), error);
}

service::Caller JsonGateway::Identify(const HttpRequest& request) const {
  if (auth_ == nullptr || !auth_->enabled()) {
    service::Caller anonymous;
    anonymous.peer = request.peer;
    return anonymous;
  }
  return auth_->IdentifyHttp(request.authorization, request.certificate_identity, request.peer);
}

template <typename Req, typename Resp, typename Call>
HttpResponse JsonGateway::Run(const HttpRequest& request, absl::string_view keyring,
                              Call call) const {
  if (request.method != "POST") {
    HttpResponse r = ErrorResponse(
        grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "method: use POST for this route"));
    r.status = 405;
    return r;
  }
  const service::Caller caller = Identify(request);
  // Unauthenticated callers learn nothing about the body or the keyring.
  if (auth_ != nullptr && auth_->enabled() && !caller.authenticated()) {
    return ErrorResponse(auth_->Check(caller, v1::AuthConfig::ROLE_UNSPECIFIED, "", ""));
  }
  if (!IsJson(request.content_type)) {
    HttpResponse r = ErrorResponse(Invalid("Content-Type: must be application/json"));
    r.status = 415;
    return r;
  }
  Req req;
  if (grpc::Status s = ParseBody(request.body, &req); !s.ok()) return ErrorResponse(s);
  if (grpc::Status s = BindKeyring(keyring, &req); !s.ok()) return ErrorResponse(s);
  Resp resp;
  if (grpc::Status s = call(req, &resp, caller); !s.ok()) return ErrorResponse(s);
  return JsonOf(200, resp);
}

HttpResponse JsonGateway::Health() const {
  google::protobuf::Struct health;
  const bool serving = serving_.load(std::memory_order_relaxed);
  (*health.mutable_fields())["status"].set_string_value(serving ? "SERVING" : "NOT_SERVING");
  return JsonOf(serving ? 200 : 503, health);
}

HttpResponse JsonGateway::Handle(const HttpRequest& request) const {
  using service::Caller;
  const service::SessionTokensService& t = *tokens_;
  if (request.path == "/healthz") {
    if (request.method == "GET" || request.method == "HEAD") return Health();
    HttpResponse r = ErrorResponse(
        grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "method: use GET for /healthz"));
    r.status = 405;
    return r;
  }
  const size_t colon = request.path.rfind(':');
  if (absl::StartsWith(request.path, kKeyringsPrefix) && colon != absl::string_view::npos &&
      colon >= kKeyringsPrefix.size()) {
    const absl::string_view keyring =
        request.path.substr(kKeyringsPrefix.size(), colon - kKeyringsPrefix.size());
    const absl::string_view verb = request.path.substr(colon + 1);
    if (verb == "sign") {
      return Run<v1::SignRequest, v1::SignResponse>(
          request, keyring,
          [&](const auto& q, auto* p, const Caller& c) { return t.DoSign(q, p, c); });
    }
    if (verb == "verify") {
      return Run<v1::VerifyRequest, v1::VerifyResponse>(
          request, keyring,
          [&](const auto& q, auto* p, const Caller& c) { return t.DoVerify(q, p, c); });
    }
    if (verb == "batchSign") {
      return Run<v1::BatchSignRequest, v1::BatchSignResponse>(
          request, keyring,
          [&](const auto& q, auto* p, const Caller& c) { return t.DoBatchSign(q, p, c); });
    }
    if (verb == "batchVerify") {
      return Run<v1::BatchVerifyRequest, v1::BatchVerifyResponse>(
          request, keyring,
          [&](const auto& q, auto* p, const Caller& c) { return t.DoBatchVerify(q, p, c); });
    }
    if (verb == "revoke") {
      return Run<v1::RevokeRequest, v1::RevokeResponse>(
          request, keyring,
          [&](const auto& q, auto* p, const Caller& c) { return t.DoRevoke(q, p, c); });
    }
  }
  return ErrorResponse(grpc::Status(
      grpc::StatusCode::NOT_FOUND,
      absl::StrCat(
          "no such route (POST /v1/keyrings/{keyring}:sign, :verify, :batchSign, :batchVerify, "
          ":revoke; "
          "GET /healthz)")));
}

}  // namespace sessiontoken::gateway
