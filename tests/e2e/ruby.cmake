# Ruby client and Rack session middleware (client/ruby), tested with minitest against the real
# server binary; included by tests/e2e/CMakeLists.txt.
#   ctest -L ruby --output-on-failure
# Debian's ruby, ruby-grpc, ruby-google-protobuf, ruby-rack, ruby-sinatra, puma, ruby-minitest,
# ruby-railties and ruby-actionpack. The gRPC stubs are generated into the build tree only
# (client/ruby/generate.sh).
set(SESSIONTOKEN_RUBY /usr/bin/ruby)
find_program(SESSIONTOKEN_GRPC_RUBY_PLUGIN grpc_ruby_plugin)
if(NOT EXISTS ${SESSIONTOKEN_RUBY} OR NOT SESSIONTOKEN_GRPC_RUBY_PLUGIN)
  message(WARNING "ruby or grpc_ruby_plugin not found (scripts/install-deps.sh installs them); "
                  "the Ruby client tests are not registered")
  return()
endif()
set(_st_rb_stubs "${CMAKE_BINARY_DIR}/ruby")
set(_st_rb_protos)
set(_st_rb_outs "${_st_rb_stubs}/sessiontoken/service_config.json")
foreach(_p common tokens admin)
  list(APPEND _st_rb_protos "${SESSIONTOKEN_PROTO_ROOT}/sessiontoken/v1/${_p}.proto")
  list(APPEND _st_rb_outs "${_st_rb_stubs}/sessiontoken/v1/${_p}_pb.rb")
endforeach()
add_custom_command(
  OUTPUT ${_st_rb_outs}
  COMMAND sh "${CMAKE_SOURCE_DIR}/client/ruby/generate.sh" "${_st_rb_stubs}"
  DEPENDS ${_st_rb_protos} "${SESSIONTOKEN_PROTO_ROOT}/sessiontoken/v1/service_config.json"
          "${CMAKE_SOURCE_DIR}/client/ruby/generate.sh"
  COMMENT "protoc (Ruby) sessiontoken/v1 -> ${_st_rb_stubs}"
  VERBATIM)
add_custom_target(sessiontoken_ruby_stubs ALL DEPENDS ${_st_rb_outs})

# ruby_token_vectors: the st1 and st2 parser against tests/vectors (no server).
# ruby_client: Client against the server: results, error codes, service down, revoke by token
#   and by subject (REVOKED, the requests sent).
# ruby_rack_unit: when a cookie is written, kept or deleted (refresh, fail closed), cookie
#   attributes, options, the shared service config, the sign subject and revoke requests of
#   subject_key, logout and logout_everywhere.
# ruby_rack_e2e: a Sinatra app under Puma over HTTP with the real service: login, persistence,
#   nested changes, rotation and re-issue under the new key id, tampered/foreign cookies,
#   logout, service down fails closed, nothing secret logged.
# ruby_rack_revocation_e2e: subject_key, session.logout and logout_everywhere with the real
#   service: two devices, a replayed logged-out cookie, logout with the service down.
# ruby_rack_cluster_e2e: the `puma` command in cluster mode (2 forked workers): each worker makes
#   its own Client after the fork; a login is honoured by both workers.
# ruby_rails_e2e: a Rails 6.1 app with `config.session_store Sessiontoken::RackSession` under
#   Puma: login (reset_session), persistence, rotation re-issue, tampered cookie, logout,
#   service down fails closed.
foreach(_t token_vectors client rack_unit rack_e2e rack_revocation_e2e rack_cluster_e2e rails_e2e)
  add_test(NAME ruby_${_t}
    COMMAND ${SESSIONTOKEN_RUBY} "${CMAKE_SOURCE_DIR}/client/ruby/test/test_${_t}.rb")
  set_tests_properties(ruby_${_t} PROPERTIES
    ENVIRONMENT "SESSIONTOKEN_SERVER=$<TARGET_FILE:sessiontoken-server>;SESSIONTOKEN_RB_STUBS=${_st_rb_stubs}"
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}/client/ruby"
    LABELS "e2e;ruby"
    TIMEOUT 180)
endforeach()
