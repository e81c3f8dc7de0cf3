# PHP client (client/php, over the HTTP/JSON gateway) end-to-end journey with PHP's built-in
# web server, and its revocation journey (subjectKey, logout, logoutEverywhere); included by
# tests/e2e/CMakeLists.txt.   ctest -L php --output-on-failure
find_program(SESSIONTOKEN_PHP php)
if(NOT SESSIONTOKEN_PHP)
  message(WARNING "php not found (Debian: php-cli php-curl); the PHP tests are not registered")
  return()
endif()
add_test(NAME php_session_e2e
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/client/php/tests/session_e2e_test.py)
set_tests_properties(php_session_e2e PROPERTIES
  ENVIRONMENT "SESSIONTOKEN_SERVER=$<TARGET_FILE:sessiontoken-server>;SESSIONTOKEN_CLI=$<TARGET_FILE:sessiontoken>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 120
  LABELS "e2e;php")
