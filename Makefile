# TheSystem. `make run` brings the stack up; `make test` is what CI runs.
# Both build what they need; the tools they install land in ./bin.

GO            ?= go
BIN           := $(CURDIR)/bin
TOOLS         := $(BIN)/tools
GOLANGCI_LINT := $(TOOLS)/golangci-lint
# Pinned: installed from the Go module proxy, never @latest.
GOLANGCI_LINT_VERSION := v2.15.0

# The podman bindings build only with these tags (pure-Go remote client,
# no gpgme, no btrfs). Every go command here gets them, tests included.
TAGS := remote,containers_image_openpgp,exclude_graphdriver_btrfs
export GOFLAGS := $(filter-out -tags=%,$(GOFLAGS)) -tags=$(TAGS)

# A developer's own podman or docker setup must not reach the tests' podman
# (an empty CONTAINER_HOST makes podman a remote client that refuses --root).
unexport CONTAINER_HOST CONTAINER_CONNECTION DOCKER_HOST CONTAINERS_CONF

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all deps runtimes build run test unit fuzz bench lint cross clean e2e-vm app sign dmg

# The default agent runtime, from npm (the platform package holds the
# native binary; its install script is not needed).
CLAUDE_CODE_VERSION := 2.1.330
ARCH := $(subst x86_64,x64,$(subst aarch64,arm64,$(shell uname -m)))
RUNTIMES := $(BIN)/runtimes
CLAUDE := $(RUNTIMES)/node_modules/@anthropic-ai/claude-code-linux-$(ARCH)/claude
# The same release's linux package as the engine downloads it (the tests
# serve it from 127.0.0.1 or put it where the engine keeps it).
CLAUDE_PKG := $(RUNTIMES)/anthropic-ai-claude-code-linux-$(ARCH)-$(CLAUDE_CODE_VERSION).tgz
# The second runtime (swarm.backend codex): OpenAI's Codex CLI, its linux
# package as the engine downloads it (npm ships it as a version of
# @openai/codex).
CODEX_VERSION := 0.171.0
CODEX_PKG := $(RUNTIMES)/openai-codex-$(CODEX_VERSION)-linux-$(ARCH).tgz

all: build

## deps: the Debian packages the build and tests need (only the missing ones)
deps:
	@.ci/deps

## runtimes: claude-code $(CLAUDE_CODE_VERSION) and codex $(CODEX_VERSION) from npm into bin/runtimes
runtimes: $(CLAUDE) $(CLAUDE_PKG) $(CODEX_PKG)

$(CLAUDE):
	npm install --prefix $(RUNTIMES) --no-audit --no-fund --ignore-scripts --loglevel=error @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)
	@test -x $@ || { echo "claude-code's linux-$(ARCH) binary is missing from the npm install" >&2; exit 1; }

$(CLAUDE_PKG):
	mkdir -p $(RUNTIMES)
	cd $(RUNTIMES) && npm pack --silent @anthropic-ai/claude-code-linux-$(ARCH)@$(CLAUDE_CODE_VERSION) >/dev/null
	@test -s $@ || { echo "npm pack did not write $@" >&2; exit 1; }

$(CODEX_PKG):
	mkdir -p $(RUNTIMES)
	cd $(RUNTIMES) && npm pack --silent @openai/codex@$(CODEX_VERSION)-linux-$(ARCH) >/dev/null
	@test -s $@ || { echo "npm pack did not write $@" >&2; exit 1; }

## build: the thesystem binary in bin/
# Static (no cgo on Linux): the same binary is every container's init.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/thesystem ./app

## run: build, then bring the whole stack up. Without a desktop session
## (no D-Bus, so no Secret Service) it runs in the foreground with a
## throwaway keyring and follows the logs; Ctrl-C stops everything.
run: deps build
	@if [ -n "$$DBUS_SESSION_BUS_ADDRESS" ]; then \
		$(BIN)/thesystem start; \
	else \
		echo "no D-Bus session: running in the foreground with a throwaway keyring (Ctrl-C or \`bin/thesystem stop\` stops;"; \
		echo "  \`bin/thesystem keys set anthropic\` from another shell stores a key through the running engine, until it stops)"; \
		.ci/with-keyring sh -c 'trap "$(BIN)/thesystem stop >/dev/null 2>&1 || true" EXIT; $(BIN)/thesystem start && { $(BIN)/thesystem logs -f || true; }'; \
	fi

## test: unit and process tests with -race, lint, the darwin cross-check,
## and the real-VM test (root or sudo: a user and a network namespace)
test: deps unit fuzz lint cross e2e-vm

# In a private D-Bus session with a throwaway unlocked gnome-keyring, so the
# key store is tested for real; the sandbox tests start podman services of
# their own (THESYSTEM_TEST_PODMAN=1: missing podman fails, not skips).
# The agents' Debian base is built first (mmdebstrap, from the Debian
# archive, once into DEBIAN_BASE), so no test reaches the archive.
DEBIAN_BASE ?= /var/tmp/thesystem-debian-base
unit: runtimes
	THESYSTEM_DEBIAN_BASE=$$($(GO) run ./packaging/debianbase -dir $(DEBIAN_BASE)) && export THESYSTEM_DEBIAN_BASE && \
	THESYSTEM_TEST_PODMAN=1 THESYSTEM_TEST_CHROMIUM=1 THESYSTEM_TEST_QEMU=1 THESYSTEM_TEST_CLAUDE=$(CLAUDE) THESYSTEM_TEST_CLAUDE_PKG=$(CLAUDE_PKG) THESYSTEM_TEST_CODEX_PKG=$(CODEX_PKG) .ci/with-keyring $(GO) test -race -count=1 ./...
	# The real menu over D-Bus, without -race: fyne.io/systray races on its own.
	THESYSTEM_TEST_KEYRING=1 .ci/with-keyring $(GO) test -count=1 -run '^TestMenuOverDBus$$' ./menubar/

## fuzz: a short run of each fuzz target (FUZZTIME per target). A count,
## not a duration: Go 1.26's coordinator can fail a duration run with a
## spurious "context deadline exceeded" at the boundary (go.dev/issue/75804).
FUZZTIME ?= 100000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzSplitRoute$$' -fuzztime $(FUZZTIME) ./engine/proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzExtractToken$$' -fuzztime $(FUZZTIME) ./engine/proxy/

## app: TheSystem.app in $(APP_OUT) (see packaging/mkapp; on Linux without
## cgo, which checks the layout only); sign: codesign it (IDENTITY, default
## ad hoc); dmg: TheSystem.dmg. sign and dmg need a Mac.
APP_OUT  ?= $(BIN)
IDENTITY ?= -
BUILD_NUMBER ?= $(shell git rev-list --count HEAD 2>/dev/null || echo 0)
app:
	packaging/mkapp $(APP_OUT) '$(VERSION)' '$(BUILD_NUMBER)' '$(LDFLAGS)'
sign: app
	packaging/sign $(APP_OUT)/TheSystem.app '$(IDENTITY)'
dmg: sign
	packaging/dmg $(APP_OUT)/TheSystem.app $(APP_OUT)/TheSystem.dmg

## e2e-vm: the real-VM test: a Lima VM booted under QEMU (TCG) runs the
## stack; as an unprivileged user in a loopback-only network namespace
## (needs root for those). .ci/vm-setup prepares limactl and the image.
E2E_VM_CACHE ?= /var/tmp/thesystem-e2e-vm
e2e-vm: runtimes
	THESYSTEM_E2E_VM_CACHE=$(E2E_VM_CACHE) .ci/vm-setup
	mkdir -p $(E2E_VM_CACHE)/work
	cp $(CLAUDE_PKG) $(E2E_VM_CACHE)/work/claude-code.tgz
	CGO_ENABLED=0 $(GO) build -o $(E2E_VM_CACHE)/work/thesystem ./app
	$(GO) test -c -tags=$(TAGS),e2evm -o $(E2E_VM_CACHE)/work/cli.test ./cli
	THESYSTEM_E2E_VM_CACHE=$(E2E_VM_CACHE) .ci/vm-run

## bench: the proxy against the same fake upstream direct, side by side
BENCHTIME ?= 3000x
bench: build runtimes
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count 1 ./engine/proxy/
	.ci/with-keyring $(GO) test -run '^$$' -bench Daemon -benchtime 2000x -count 1 ./cli/
	.ci/with-keyring $(GO) test -run '^$$' -bench StackStart -benchtime 1x -count 1 ./cli/
	.ci/with-keyring $(GO) test -run '^$$' -bench Idle -benchtime 1x -count 1 ./cli/
	$(GO) test -run '^$$' -bench Load -benchmem -count 1 ./engine/usage/
	THESYSTEM_DEBIAN_BASE=$$($(GO) run ./packaging/debianbase -dir $(DEBIAN_BASE)) && export THESYSTEM_DEBIAN_BASE && \
	THESYSTEM_TEST_CLAUDE=$(CLAUDE) $(GO) test -run '^$$' -bench AgentImage -benchtime 2x -count 1 ./engine/sandbox/ && \
	THESYSTEM_TEST_CLAUDE=$(CLAUDE) THESYSTEM_TEST_CLAUDE_PKG=$(CLAUDE_PKG) .ci/with-keyring $(GO) test -run '^$$' -bench Task -benchtime 3x -count 1 -timeout 30m ./cli/

## lint: golangci-lint v2 (govet, staticcheck, errorlint, bodyclose, noctx, …)
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

## cross: everything but the cgo files builds and vets for macOS, and
## everything with them (the darwin && cgo files) type-checks for it
cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./...
	$(GO) run ./packaging/darwincheck ./...

clean:
	rm -rf $(BIN)
