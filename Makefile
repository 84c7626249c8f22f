# The two commands of the README:
#   make demo   install what is missing, build, start 3 test nodes with VMs
#   make check  install what is missing, build (also with ASan/UBSan), run every test
BUILD  ?= build
ASAN   ?= build-asan
NINJA  ?= ninja

# A recipe fails when any command of a pipeline fails (ninja | grep below).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
# ninja without its progress lines ("[12/80] Compiling ..."); errors stay.
# grep exits 1 when it prints nothing (a build with no other output): no error.
QUIET := { grep -v '^\[' || [ $$? -eq 1 ]; }

.PHONY: all deps build asan check demo demo-stop bench install clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) >/dev/null

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug >/dev/null

build: deps $(BUILD)/build.ninja
	@$(NINJA) -C $(BUILD) | $(QUIET)
	@test -x $(BUILD)/src/herdd

asan: deps $(ASAN)/build.ninja
	@$(NINJA) -C $(ASAN) | $(QUIET)
	@test -x $(ASAN)/src/herdd

check: build asan
	@scripts/run-checks $(BUILD) $(ASAN)

demo: build
	@tests/cluster/demo

demo-stop:
	@tests/cluster/testnodes --instance demo down

bench: build
	@scripts/run-benchmarks $(BUILD)

install: build
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN)
