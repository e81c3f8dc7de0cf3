# Thin entry points. On a fresh Debian 12 machine use ./make.sh (it installs `make` itself):
#   ./make.sh run    install deps, build, start the server on 127.0.0.1:50051 (dev KEK),
#                    with the HTTP/JSON gateway on 127.0.0.1:50080
#   ./make.sh test   install deps, build, run the whole test suite: check + sanitize + fuzz
# Quicker while developing: `make check` (release build, every test once).
PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:50051
HTTP_LISTEN ?= 127.0.0.1:50080

.PHONY: deps build run run-ha check test sanitize bench fuzz clean

deps:
	@sh scripts/install-deps.sh
	@sh scripts/fetch-boringssl.sh
	@sh client/node/install.sh
	@sh tests/deploy/install.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@echo "Starting sessiontoken-server on $(LISTEN), HTTP/JSON gateway on $(HTTP_LISTEN) (data in ./data, development KEK)."
	@echo "In another terminal:  $(BUILD_DIR)/client/cpp/sessiontoken --server=$(LISTEN) sign --payload=hello --ttl=1h"
	@exec $(BUILD_DIR)/server/sessiontoken-server --listen=$(LISTEN) --http_listen=$(HTTP_LISTEN) --data_dir=data --dev_kek

# Three replicas sharing one local etcd, rotating a keyring together (README: "Try three
# replicas"); data and logs in ./.run-ha, Ctrl-C stops everything. HA_LISTEN is r1's address
# (r2, r3 take the next ports); HA_ETCD_MEMBERS=3 starts a 3-member etcd.
HA_LISTEN ?= 127.0.0.1:50061
HA_ETCD_MEMBERS ?= 1
run-ha: build
	@exec /usr/bin/python3 scripts/run_ha.py --build_dir=$(BUILD_DIR) --listen=$(HA_LISTEN) --etcd_members=$(HA_ETCD_MEMBERS)

check: build
	@cd $(BUILD_DIR) && ctest -j 2 --output-on-failure

# The unit and integration suites again, built with AddressSanitizer + UBSan.
sanitize: deps
	@cmake --preset asan >/dev/null
	@cmake --build build/asan -j $(JOBS)
	@cd build/asan && ctest -j 2 -L "unit|integration" --output-on-failure

# Everything CI runs (.ci/run): all tests, the sanitizer run, every fuzz target for a
# bounded time (two at a time).
test: check sanitize
	@FUZZ_PARALLEL=$${FUZZ_PARALLEL:-2} bash tests/fuzz/run.sh

# Performance table (docs/performance.md); BENCH_RUNS, BENCH_DURATION... tune it.
bench: build
	@/usr/bin/python3 tests/bench/run_bench.py --build_dir=$(BUILD_DIR)

# libFuzzer targets, clang + ASan/UBSan, FUZZ_SECONDS (60) each: tests/fuzz/run.sh.
fuzz: deps
	@bash tests/fuzz/run.sh

clean:
	rm -rf build
