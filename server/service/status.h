// Conversion of absl::Status (core libraries) to grpc::Status (the wire).
#ifndef SESSIONTOKEN_SERVER_SERVICE_STATUS_H_
#define SESSIONTOKEN_SERVER_SERVICE_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace sessiontoken::service {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace sessiontoken::service

#endif  // SESSIONTOKEN_SERVER_SERVICE_STATUS_H_
