"""The editor's side of LSP, for driving the real server over stdio: the `demo` command, the
benchmarks and the end-to-end tests all talk to `starcoder-lsp serve` through it.

`session`: start the server, initialise it like an editor, follow `starcoder/status`, ask for
completions and code actions, shut it down. `editor`: positions and the application of an inline
item as an editor computes them.
"""
