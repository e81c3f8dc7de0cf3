# sessiontoken_proto_library(NAME PROTOS... [GRPC]): generates C++ (and gRPC) code into
# the build tree only, and wraps it in a static library.
set(SESSIONTOKEN_PROTO_ROOT "${CMAKE_SOURCE_DIR}/proto")
set(SESSIONTOKEN_GEN_DIR "${CMAKE_BINARY_DIR}/gen")
get_target_property(SESSIONTOKEN_GRPC_CPP_PLUGIN gRPC::grpc_cpp_plugin LOCATION)

function(sessiontoken_proto_library name)
  cmake_parse_arguments(ARG "GRPC" "" "PROTOS;DEPS" ${ARGN})
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    get_filename_component(abs "${proto}" ABSOLUTE)
    file(RELATIVE_PATH rel "${SESSIONTOKEN_PROTO_ROOT}" "${abs}")
    string(REGEX REPLACE "\\.proto$" "" base "${rel}")
    set(outs "${SESSIONTOKEN_GEN_DIR}/${base}.pb.cc" "${SESSIONTOKEN_GEN_DIR}/${base}.pb.h")
    set(grpc_args)
    if(ARG_GRPC)
      list(APPEND outs "${SESSIONTOKEN_GEN_DIR}/${base}.grpc.pb.cc"
                       "${SESSIONTOKEN_GEN_DIR}/${base}.grpc.pb.h")
      set(grpc_args --grpc_out=${SESSIONTOKEN_GEN_DIR}
                    --plugin=protoc-gen-grpc=${SESSIONTOKEN_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${SESSIONTOKEN_GEN_DIR}
      COMMAND protobuf::protoc -I ${SESSIONTOKEN_PROTO_ROOT}
              --cpp_out=${SESSIONTOKEN_GEN_DIR} ${grpc_args} ${abs}
      DEPENDS ${abs} protobuf::protoc
      COMMENT "protoc ${rel}"
      VERBATIM)
    list(APPEND srcs ${outs})
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${SESSIONTOKEN_GEN_DIR})
  target_compile_options(${name} PRIVATE -w)
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  if(ARG_GRPC)
    target_link_libraries(${name} PUBLIC gRPC::grpc++)
  endif()
endfunction()
