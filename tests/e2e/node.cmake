# Node.js client and Express middleware (client/node), tested with `node --test` against the
# real server binary. Included by tests/e2e/CMakeLists.txt.
#   ctest -L e2e -R node --output-on-failure
# Needs client/node/node_modules: client/node/install.sh (npm ci from the lockfile) runs in
# the build's deps step.
set(SESSIONTOKEN_NODE_DIR ${CMAKE_SOURCE_DIR}/client/node)
# -DSESSIONTOKEN_NODE=/path/to/node runs the Node suites with another Node.js (e.g. Debian
# 12's own 18.x, which a fresh machine gets from scripts/install-deps.sh).
find_program(SESSIONTOKEN_NODE NAMES node nodejs)
if(NOT SESSIONTOKEN_NODE)
  message(WARNING "node not found: node_e2e and node_types will fail (scripts/install-deps.sh installs Node.js)")
  set(SESSIONTOKEN_NODE node)
endif()

# The client, the session middleware in a real Express app, token vectors, CLI interop.
add_test(NAME node_e2e
  COMMAND ${SESSIONTOKEN_NODE} --test ${SESSIONTOKEN_NODE_DIR}/test/
  WORKING_DIRECTORY ${SESSIONTOKEN_NODE_DIR})
set_tests_properties(node_e2e PROPERTIES
  ENVIRONMENT "SESSIONTOKEN_SERVER=$<TARGET_FILE:sessiontoken-server>;SESSIONTOKEN_CLI=$<TARGET_FILE:sessiontoken>"
  LABELS e2e
  TIMEOUT 180)

# The same suites from a copy of the checkout under a dot-folder (<tmp>/.dotdir/...).
add_test(NAME node_e2e_dot_folder
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/from_dot_folder.sh ${SESSIONTOKEN_NODE} ${CMAKE_SOURCE_DIR})
set_tests_properties(node_e2e_dot_folder PROPERTIES
  ENVIRONMENT "SESSIONTOKEN_SERVER=$<TARGET_FILE:sessiontoken-server>;SESSIONTOKEN_CLI=$<TARGET_FILE:sessiontoken>"
  LABELS e2e
  TIMEOUT 180)

# The hand-written type declarations (index.d.ts) compile and reject misuse.
add_test(NAME node_types
  COMMAND ${SESSIONTOKEN_NODE} ${SESSIONTOKEN_NODE_DIR}/node_modules/typescript/bin/tsc
          --noEmit -p ${SESSIONTOKEN_NODE_DIR}/tsconfig.json
  WORKING_DIRECTORY ${SESSIONTOKEN_NODE_DIR})
set_tests_properties(node_types PROPERTIES
  LABELS e2e
  TIMEOUT 120)
