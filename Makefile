# The two set-up commands from the README:
#   make image   builds the default image from recipes/worker.yaml into images/worker/
#   make test    runs the whole test suite (unit tests, then an image build and its checks)
# Both install their dependencies first and can be run again at any time.

BUILD_DIR ?= build
RECIPE ?= recipes/worker.yaml
export PATH := /usr/local/go/bin:$(PATH)
# ccache keeps compiled objects across build trees (a fresh clone, the sanitized tree beside
# the build); with the base directory its key is the source, not where the clone lives.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps kiln image test format clean
all: kiln

deps:
	@./scripts/install-deps

kiln: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DKILN_WERROR=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
	@cmake --build $(BUILD_DIR)

image: kiln
	$(BUILD_DIR)/kiln build $(RECIPE)

# Two at a time: the slow tests each keep one core busy emulating a guest (see tests/CMakeLists.txt).
TEST_JOBS ?= 2

# Every run adds stage outputs to the kiln cache (a changed recipe or kiln makes new ones, and
# one overlay test's are new by design), so the cache is first brought within a budget, least
# recently used out first: a runner's disk never fills up. TEST_CACHE_BUDGET= skips it.
TEST_CACHE_BUDGET ?= 24G

test: kiln
	@if [ -n "$(TEST_CACHE_BUDGET)" ]; then \
	  $(BUILD_DIR)/kiln cache prune --max-size $(TEST_CACHE_BUDGET) > $(BUILD_DIR)/cache-prune.log && \
	  tail -n 1 $(BUILD_DIR)/cache-prune.log; fi
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 3600 --parallel $(TEST_JOBS)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR)
