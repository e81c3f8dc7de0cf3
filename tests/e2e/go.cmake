# Go client and net/http middleware (client/go), tested with `go test` against the real server
# binary; included by tests/e2e/CMakeLists.txt.
#   ctest -L go --output-on-failure
# Built offline from Debian's golang-go, golang-google-grpc-dev, golang-google-protobuf-dev,
# golang-github-golang-protobuf-1-5-dev, protoc-gen-go and protoc-gen-go-grpc in GOPATH mode
# (client/go/gopath.sh); the generated code goes into the build tree only.
find_program(SESSIONTOKEN_GO go)
find_program(SESSIONTOKEN_PROTOC_GEN_GO_GRPC protoc-gen-go-grpc)
if(NOT SESSIONTOKEN_GO OR NOT SESSIONTOKEN_PROTOC_GEN_GO_GRPC)
  message(WARNING "go or protoc-gen-go-grpc not found (scripts/install-deps.sh installs them); "
                  "the Go client tests are not registered")
  return()
endif()
set(_st_go_dir "${CMAKE_BINARY_DIR}/go")
set(_st_go_env
  "SESSIONTOKEN_SERVER=$<TARGET_FILE:sessiontoken-server>"
  "SESSIONTOKEN_VECTORS=${CMAKE_SOURCE_DIR}/tests/vectors/native_v1.json"
  "GOCACHE=${_st_go_dir}/cache")

# go_build: every package and test compiles. go_lint: gofmt and go vet. go_client: the st1 and st2 parser against tests/vectors, the shared
# service config, Client against the server (results, error codes, 5 attempts for Verify and 1
# for Rotate when the service is down), Revoke by token and by subject (REVOKED, the requests
# sent). go_session_unit: cookie attributes, when a cookie is
# written, kept or deleted (refresh, fail closed), options, the subject and Revoke requests of
# SubjectKey, Logout and LogoutEverywhere. go_session_e2e: a real net/http
# server over HTTP with the real service: login, persistence, rotation and re-issue under the
# new key id, tampered/foreign cookies, too large, logout, service down fails closed, nothing
# secret logged; RefreshAfter re-signs an unchanged session once its token is that old;
# revocation (SubjectKey, Logout, LogoutEverywhere): two devices, a replayed logged-out cookie,
# logout with the service down.
function(sessiontoken_go_test name)
  add_test(NAME ${name}
    COMMAND sh "${CMAKE_SOURCE_DIR}/client/go/test.sh" "${_st_go_dir}/${name}" ${ARGN})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "${_st_go_env}"
    LABELS "e2e;go"
    TIMEOUT 600)
  if(NOT name STREQUAL "go_build")
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED go_cache)
  endif()
endfunction()
# go_build compiles every package and test binary (no test runs) once, so that the others
# find grpc-go compiled in GOCACHE instead of compiling it side by side (minutes when cold).
sessiontoken_go_test(go_build -run "^$" sessiontoken sessiontoken/session sessiontoken/sessiontest)
set_tests_properties(go_build PROPERTIES FIXTURES_SETUP go_cache)
sessiontoken_go_test(go_lint --lint)
sessiontoken_go_test(go_client sessiontoken)
sessiontoken_go_test(go_session_unit -run "Decide|Cookie|Secure|Options|SessionJSON|LogoutRequests" sessiontoken/session)
sessiontoken_go_test(go_session_e2e -run "TestJourney|TestRefreshAfter|TestRevocationJourney" -v sessiontoken/session)
