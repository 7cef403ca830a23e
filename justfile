# hfdriver tasks. `just --list` shows them all.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
python := venv + "/bin/python"

# Create .venv and install hfdriver with the dev and local extras (editable; llama.cpp builds once).
setup:
    test -x {{python}} || python3 -m venv {{venv}}
    {{python}} -m pip install -q -U pip
    # llama.cpp for x86-64-v3, not -march=native: see .ci/run (AMX on virtual machines).
    CMAKE_ARGS="${HFDRIVER_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" {{python}} -m pip install -q 'llama-cpp-python>=0.3.0'
    {{python}} -m pip install -q -e '.[dev,local,ray]'

# The offline test suite (unit, integration against FakeRouter, corpus conformance).
test *args:
    {{python}} -m pytest -q {{args}}

# Smoke tests against the real router (needs HUGGINGFACE_API_TOKEN; at most 10 tokens a call).
test-api:
    {{python}} -m pytest -q -m api tests/api -rs

# ruff lint + format check, and the architecture contracts (import-linter).
lint:
    {{python}} -m ruff check src tests benchmarks examples scripts
    {{python}} -m ruff format --check src tests benchmarks examples scripts
    {{venv}}/bin/lint-imports

# Format the code.
fmt:
    {{python}} -m ruff format src tests benchmarks examples scripts
    {{python}} -m ruff check --fix src tests benchmarks examples scripts

# Regenerate the docs drawn from code (HUGGINGFACE.md's table of error kinds).
docs:
    {{python}} scripts/render_docs.py

# mypy --strict on the library.
typecheck:
    {{python}} -m mypy --strict src

# One chat completion: the real router when HF_TOKEN is set, else the embedded local model.
demo *args:
    {{python}} examples/chat.py {{args}}

# All benchmarks: client CPU vs raw aiohttp, local tokens/s vs llama.cpp, serve requests/s and CPU, batches.
bench: bench-client bench-local bench-serve bench-serve-cpu bench-responses bench-batch bench-ray bench-embed bench-tasks

# Client CPU per request / per chunk: raw aiohttp vs hfdriver (and peers when installed).
bench-client *args:
    {{python}} benchmarks/bench_client.py {{args}}

# Tasks: TaskClient's CPU per call against huggingface_hub's AsyncInferenceClient (and raw aiohttp).
bench-tasks *args:
    {{python}} benchmarks/bench_tasks.py {{args}}

# Embeddings: client CPU vs raw aiohttp and peers, memory of a 100,000 x 384 answer, local and serve texts/s.
bench-embed *args:
    {{python}} benchmarks/bench_embed.py {{args}}

# Server CPU per streamed event: /v1/responses against /v1/chat/completions, both through `hfdriver serve`.
bench-responses *args:
    {{python}} benchmarks/bench_responses.py {{args}}

# LocalDriver tokens/s against llama-cpp-python called directly (same model and settings).
bench-local *args:
    {{python}} benchmarks/bench_local.py {{args}}

# Requests/s through `hfdriver serve` (backed by FakeRouter) against the driver called directly.
bench-serve *args:
    {{python}} benchmarks/bench_serve.py {{args}}

# Server CPU per proxied request and stream event: `hfdriver serve` against a minimal aiohttp proxy.
bench-serve-cpu *args:
    {{python}} benchmarks/bench_serve_cpu.py {{args}}

# Everything CI runs.
ci: test lint typecheck

# Batch throughput under a rate limit vs the anchors, memory flatness, cache-hit CPU (a few minutes).
bench-batch *args:
    {{python}} benchmarks/bench_batch.py {{args}}

# The batch on Ray (shared limit) vs Ray Data LLM's HTTP request processor, same limit and workers.
bench-ray *args:
    {{python}} benchmarks/bench_ray.py {{args}}
