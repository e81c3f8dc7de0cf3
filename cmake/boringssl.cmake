# BoringSSL as a static library with hidden symbols, built from Debian's source package.
# Debian's gRPC links OpenSSL 3, whose libcrypto exports the same symbol names; hiding
# BoringSSL's symbols (and --exclude-libs at link time) keeps the two apart. See
# docs/security.md and shared notes on BoringSSL isolation.
if(NOT EXISTS "${SESSIONTOKEN_BORINGSSL_DIR}/android-sources.cmake")
  message(FATAL_ERROR
    "BoringSSL source not found in ${SESSIONTOKEN_BORINGSSL_DIR}.\n"
    "Run scripts/fetch-boringssl.sh (or `make build`) first.")
endif()
set(BORINGSSL_ROOT "${SESSIONTOKEN_BORINGSSL_DIR}/")
include("${SESSIONTOKEN_BORINGSSL_DIR}/android-sources.cmake")
add_library(bssl_crypto STATIC ${crypto_sources} ${crypto_sources_linux_x86_64})
target_include_directories(bssl_crypto SYSTEM PUBLIC "${SESSIONTOKEN_BORINGSSL_DIR}/src/include")
set_target_properties(bssl_crypto PROPERTIES
  C_VISIBILITY_PRESET hidden
  CXX_VISIBILITY_PRESET hidden
  POSITION_INDEPENDENT_CODE ON)
target_compile_definitions(bssl_crypto PRIVATE BORINGSSL_IMPLEMENTATION)
target_compile_options(bssl_crypto PRIVATE -w)
# Every binary that links BoringSSL must not re-export its symbols. Only BoringSSL's archive
# is named: "ALL" would also hide a static sanitizer runtime's malloc/free from the shared
# libraries (clang's ASan, used by the fuzz preset), which then crash at start-up.
target_link_options(bssl_crypto INTERFACE "LINKER:--exclude-libs,libbssl_crypto.a")
