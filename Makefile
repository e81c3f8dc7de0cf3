# Thin entry points. On a fresh Debian 12 machine use ./make.sh (it installs `make` itself):
#   ./make.sh run    install deps, build, start the server on 127.0.0.1:50051 (dev KEK)
#   ./make.sh test   install deps, build, run the whole test suite
PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:50051

.PHONY: deps build run test test-asan clean

deps:
	@sh scripts/install-deps.sh
	@sh scripts/fetch-boringssl.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@echo "Starting sessiontoken-server on $(LISTEN) (data in ./data, development KEK)."
	@echo "In another terminal:  $(BUILD_DIR)/client/cpp/sessiontoken --server=$(LISTEN) sign --payload=hello --ttl=1h"
	@exec $(BUILD_DIR)/server/sessiontoken-server --listen=$(LISTEN) --data_dir=data --dev_kek

test: build
	@cd $(BUILD_DIR) && ctest -j 2 --output-on-failure

test-asan:
	@$(MAKE) --no-print-directory test PRESET=asan

clean:
	rm -rf build
