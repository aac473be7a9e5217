"""Languages by LSP `languageId` (extension as fallback): what a header comment looks like.

StarCoder's training set covers 80+ languages; a family without repo/file tokens gets the snippet's
path as a comment in the snippet's own language, so the comment syntax must be right for all.
"""

from __future__ import annotations

from pathlib import PurePosixPath

# languageId -> line-comment opener (block-comment-only languages use (open, close) pairs below).
LINE_COMMENT: dict[str, str] = {
    **dict.fromkeys(
        ["python", "ruby", "perl", "shellscript", "bash", "sh", "zsh", "fish", "r", "julia",
         "yaml", "toml", "dockerfile", "makefile", "cmake", "powershell", "elixir", "nim",
         "crystal", "coffeescript", "tcl", "gdscript", "starlark", "nix", "terraform", "hcl",
         "graphql", "awk", "ini", "properties", "raku", "conf"],
        "#",
    ),
    **dict.fromkeys(
        ["c", "cpp", "objective-c", "objective-cpp", "csharp", "java", "javascript",
         "javascriptreact", "typescript", "typescriptreact", "go", "rust", "swift", "kotlin",
         "scala", "dart", "php", "groovy", "zig", "d", "verilog", "systemverilog", "solidity",
         "proto", "protobuf", "jsonc", "glsl", "hlsl", "cuda", "fsharp", "v", "odin", "carbon",
         "vue", "svelte", "less", "scss", "jsonnet", "apex", "hack", "haxe", "arduino"],
        "//",
    ),
    **dict.fromkeys(["sql", "lua", "haskell", "elm", "ada", "vhdl", "purescript", "agda"], "--"),
    **dict.fromkeys(["lisp", "clojure", "scheme", "racket", "commonlisp", "emacs-lisp",
                     "asm", "nasm", "ini-semicolon"], ";"),
    **dict.fromkeys(["erlang", "latex", "tex", "matlab", "octave", "prolog", "postscript"], "%"),
    **dict.fromkeys(["vim", "viml"], '"'),
    **dict.fromkeys(["fortran", "fortran-modern"], "!"),
    **dict.fromkeys(["bat", "batch"], "REM"),
    **dict.fromkeys(["vb", "vba", "visual-basic"], "'"),
}
BLOCK_COMMENT: dict[str, tuple[str, str]] = {
    **dict.fromkeys(["html", "xml", "markdown", "svg", "xsl", "vue-html"], ("<!--", "-->")),
    **dict.fromkeys(["css"], ("/*", "*/")),
    **dict.fromkeys(["ocaml", "pascal", "mathematica"], ("(*", "*)")),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".rb": "ruby", ".pl": "perl", ".sh": "shellscript",
    ".bash": "shellscript", ".zsh": "shellscript", ".r": "r", ".jl": "julia", ".yml": "yaml",
    ".yaml": "yaml", ".toml": "toml", ".ex": "elixir", ".exs": "elixir", ".nim": "nim",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".m": "objective-c", ".mm": "objective-cpp", ".cs": "csharp", ".java": "java",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascriptreact",
    ".ts": "typescript", ".mts": "typescript", ".tsx": "typescriptreact", ".go": "go",
    ".rs": "rust", ".swift": "swift", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala",
    ".dart": "dart", ".php": "php", ".groovy": "groovy", ".zig": "zig", ".sol": "solidity",
    ".proto": "proto", ".cu": "cuda", ".fs": "fsharp", ".vue": "vue", ".svelte": "svelte",
    ".scss": "scss", ".less": "less", ".sql": "sql", ".lua": "lua", ".hs": "haskell",
    ".elm": "elm", ".adb": "ada", ".clj": "clojure", ".scm": "scheme", ".rkt": "racket",
    ".lisp": "commonlisp", ".el": "emacs-lisp", ".erl": "erlang", ".tex": "latex",
    ".vim": "vim", ".f90": "fortran", ".bat": "bat", ".vb": "vb", ".html": "html",
    ".htm": "html", ".xml": "xml", ".md": "markdown", ".css": "css", ".ml": "ocaml",
    ".pas": "pascal", ".tf": "terraform", ".ps1": "powershell", ".dockerfile": "dockerfile",
    ".cmake": "cmake", ".graphql": "graphql", ".v": "verilog", ".sv": "systemverilog",
}
FILENAMES: dict[str, str] = {"Dockerfile": "dockerfile", "Makefile": "makefile",
                             "CMakeLists.txt": "cmake", "Rakefile": "ruby"}


# languageId -> the extension its files usually have (the first one listed above).
_EXTENSION_OF: dict[str, str] = {}
for _ext, _lang in EXTENSIONS.items():
    _EXTENSION_OF.setdefault(_lang, _ext)


def extension_for(language_id: str) -> str:
    """`.py` for `python`; '' when the language has no usual extension here."""
    return _EXTENSION_OF.get(language_id, "")


def language_of(language_id: str, path: str) -> str:
    """The languageId, else one guessed from the file name."""
    if language_id and language_id != "plaintext":
        return language_id
    name = PurePosixPath(path).name
    return FILENAMES.get(name) or EXTENSIONS.get(PurePosixPath(path).suffix.lower(), "plaintext")


def comment(language: str, text: str) -> str:
    """`text` as a one-line comment in `language` (falls back to `#`, the most common)."""
    if language in BLOCK_COMMENT:
        start, end = BLOCK_COMMENT[language]
        return f"{start} {text} {end}"
    return f"{LINE_COMMENT.get(language, '#')} {text}"
