# Python client (client/python) and its end-to-end tests; included by tests/e2e/CMakeLists.txt.
#   ctest --test-dir build/dev -L python --output-on-failure
#
# The gRPC stubs are generated into the build tree only (${CMAKE_BINARY_DIR}/python), never
# into the source tree; the tests find them through SESSIONTOKEN_PY_STUBS.
set(SESSIONTOKEN_PY_INTERPRETER /usr/bin/python3)   # Debian's, with python3-grpcio and Flask
set(SESSIONTOKEN_PY_STUBS_DIR "${CMAKE_BINARY_DIR}/python")
set(SESSIONTOKEN_PY_TESTS_DIR "${CMAKE_SOURCE_DIR}/client/python/tests")

find_program(SESSIONTOKEN_GRPC_PYTHON_PLUGIN grpc_python_plugin)
if(NOT SESSIONTOKEN_GRPC_PYTHON_PLUGIN)
  message(WARNING "grpc_python_plugin not found (Debian: protobuf-compiler-grpc); "
                  "the Python client tests are not registered")
  return()
endif()

set(_st_py_protos)
set(_st_py_outs)
foreach(_p common tokens admin)
  list(APPEND _st_py_protos "${SESSIONTOKEN_PROTO_ROOT}/sessiontoken/v1/${_p}.proto")
  list(APPEND _st_py_outs "${SESSIONTOKEN_PY_STUBS_DIR}/sessiontoken/v1/${_p}_pb2.py"
                          "${SESSIONTOKEN_PY_STUBS_DIR}/sessiontoken/v1/${_p}_pb2_grpc.py")
endforeach()
add_custom_command(
  OUTPUT ${_st_py_outs}
  COMMAND ${CMAKE_COMMAND} -E make_directory "${SESSIONTOKEN_PY_STUBS_DIR}"
  COMMAND protobuf::protoc -I "${SESSIONTOKEN_PROTO_ROOT}"
          "--python_out=${SESSIONTOKEN_PY_STUBS_DIR}"
          "--grpc_python_out=${SESSIONTOKEN_PY_STUBS_DIR}"
          "--plugin=protoc-gen-grpc_python=${SESSIONTOKEN_GRPC_PYTHON_PLUGIN}"
          ${_st_py_protos}
  DEPENDS ${_st_py_protos} protobuf::protoc
  COMMENT "protoc (Python) sessiontoken/v1 -> ${SESSIONTOKEN_PY_STUBS_DIR}"
  VERBATIM)
add_custom_target(sessiontoken_python_stubs ALL DEPENDS ${_st_py_outs})

set(_st_py_env
  "SESSIONTOKEN_SERVER=$<TARGET_FILE:sessiontoken-server>"
  "SESSIONTOKEN_CLI=$<TARGET_FILE:sessiontoken>"
  "SESSIONTOKEN_PY_STUBS=${SESSIONTOKEN_PY_STUBS_DIR}"
  "PYTHONPATH=${CMAKE_SOURCE_DIR}/client/python"
  "PYTHONDONTWRITEBYTECODE=1")

# test_token_vectors: the package's token parsers against tests/vectors (no server).
# test_client: Client against the server: typed results, errors, deadlines, retries.
# test_flask_e2e: a real Flask app over HTTP: login, rotate, re-issue, tamper, fail closed.
# test_flask_sessions_e2e: sessions that survive a stalled/down service (never overwritten
#   nor deleted when Verify failed), rolling refresh (Sign count), session too large,
#   SESSION_COOKIE_PARTITIONED, a forking WSGI server.
# test_flask_large_session: a 3,000-byte session on a Flask-format keyring: compressed cookie
#   under 4 KB, loaded by real Flask; an incompressible one refused naming the payload.
# test_flask_revocation_e2e: log out everywhere on one of two devices, the other cookie is
#   refused; logout revokes the current token (a replayed cookie is refused).
# test_flask_migration: an existing Flask SECRET_KEY imported (ImportKey, CreateKeyring,
#   PromoteKey, BatchVerify); skipped (exit 77) only where the server says UNIMPLEMENTED.
foreach(_t token_vectors client flask_e2e flask_sessions_e2e flask_migration flask_large_session
        flask_revocation_e2e)
  add_test(NAME python_${_t}
    COMMAND ${SESSIONTOKEN_PY_INTERPRETER} "${SESSIONTOKEN_PY_TESTS_DIR}/test_${_t}.py")
  set_tests_properties(python_${_t} PROPERTIES
    ENVIRONMENT "${_st_py_env}"
    WORKING_DIRECTORY "${SESSIONTOKEN_PY_TESTS_DIR}"
    TIMEOUT 180
    SKIP_RETURN_CODE 77
    LABELS "e2e;python")
endforeach()
