"""Helpers shared by the tests and the benchmarks (never shipped: the wheel holds `lsp_server`).

`sessions`: the end-to-end LSP session of the tests (pytest-lsp's client, editor presets) on
`lsp_server.driver`. `rawrpc`: a raw-bytes JSON-RPC client for malformed input. `hostile` and
`storms`: hostile traffic for it. `tiny_models`: tiny deterministic GGUF files.
"""
