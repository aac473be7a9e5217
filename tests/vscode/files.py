"""The workspace folder the VS Code suite opens. Each test types on its own empty body line
(4 spaces: the cursor lands indented), each the last line of its file: Qwen2.5-Coder-0.5B follows
any function after the cursor too readily (with `def triple` below, `is_even` gets `x * 3`)."""

from __future__ import annotations

from tests.test_lsp_qwen import FIB  # fib.py: the sample of the LSP-level and Neovim tests

FACT = (
    "def factorial(n):\n"
    '    """Return n!, computed recursively."""\n'
    "    if n < 2:\n"
    "        return 1\n"
    "    \n"  # line 5: Tab accepts the recursive call; then Explain Selection
)
EVEN = (
    "def is_even(n):\n"
    '    """Return True when n is even."""\n'
    "    \n"  # line 3: completed with an Untitled buffer and a second file open
)
TRIPLE = (
    "def triple(x):\n"
    '    """Return three times x."""\n'
    "    \n"  # line 3: Toggle Completions off, then on
)
SQUARE = (
    "def square(x):\n"
    '    """Return x squared."""\n'
    "    \n"  # line 3: typed slowly with a fixed debounce (one request, after the wait)
)
GEOMETRY = (
    "import math\n"
    "\n\n"
    "def circle_area(r):\n"
    '    """Return the area of a circle of radius r."""\n'
    "    \n"  # line 6: completed after Restart Server
)

ADD = (
    "def add(a, b):\n"
    '    """Return the sum of a and b."""\n'
    "    return a - b\n"  # the bug Edit Selection fixes, shown as a diff first
)

FILES = {"fact.py": FACT, "fib.py": FIB, "even.py": EVEN, "triple.py": TRIPLE, "geometry.py": GEOMETRY,
         "add.py": ADD, "square.py": SQUARE}
