# The two README commands: `make demo` (a real completion and explanation through the real server)
# and `make test` (every test). Both build the virtual environment at .venv/ first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles llama.cpp from source (~6 min on 2 cores): build the wheel once per
# machine and keep it here; pip reuses it on every later install.
# Built for this CPU (GGML_NATIVE) but without AMX: on Sapphire Rapids-class CPUs llama.cpp's AMX
# matmul segfaults on the first batched decode of a Q4_K model (seen here; llama.cpp#20824). GCC
# lets an explicit -mno-* win over -march=native. The cache directory names the build, so a wheel
# built with AMX is never reused.
WHEEL_CACHE ?= $(HOME)/.cache/starcoder-lsp/wheels/no-amx
LLAMA_CPP := llama-cpp-python==0.3.36
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS := $(if $(filter x86_64,$(shell uname -m)),-DCMAKE_C_FLAGS="$(NO_AMX)" -DCMAKE_CXX_FLAGS="$(NO_AMX)")

.PHONY: install demo test lint typecheck pytest extension vscode playground clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	mkdir -p $(WHEEL_CACHE)
	ls $(WHEEL_CACHE)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(BIN)/python -m pip wheel --no-deps --no-cache-dir $(LLAMA_CPP) -w $(WHEEL_CACHE)
	$(BIN)/python -m pip install -q --find-links $(WHEEL_CACHE) -e '.[test]'
	$(BIN)/python -m pip install -q --force-reinstall --no-deps $(WHEEL_CACHE)/llama_cpp_python-0.3.36-*.whl
	touch $@

# The playground's page (`starcoder-lsp playground`): playground-web/ bundled by esbuild into
# lsp_server/playground/static/ (git-ignored; shipped in the package). Needs Node >= 20 and npm.
PLAYGROUND_PAGE := lsp_server/playground/static/index.html
$(PLAYGROUND_PAGE): playground-web/package.json playground-web/package-lock.json playground-web/build.mjs \
                    $(wildcard playground-web/src/* playground-web/samples/*)
	cd playground-web && NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false npm ci --no-audit --no-fund
	cd playground-web && node build.mjs

playground: $(PLAYGROUND_PAGE)

install: $(VENV)/.installed $(PLAYGROUND_PAGE)

demo: install
	$(BIN)/starcoder-lsp demo

lint: install
	$(BIN)/ruff check lsp_server tests benchmarks testkit

typecheck: install
	$(BIN)/mypy

pytest: install vscode
	$(BIN)/python -m pytest -q

# The VS Code extension: npm ci, typecheck, lint, unit tests, .vsix (tests/vscode installs that
# .vsix into a real VS Code, so `test` runs this before pytest).
extension: install
	bash vscode-extension/ci.sh

# A real VS Code for tests/vscode: code-server + Chromium into ~/.cache (idempotent; seconds when
# already there, a few minutes the first time on a machine).
vscode:
	bash tests/vscode/install.sh

test: lint typecheck extension pytest

clean:
	rm -rf $(VENV)
