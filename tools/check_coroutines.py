#!/usr/bin/env python3
"""Fails on the C++ coroutine patterns that g++ 12 miscompiles.

g++ 12 (Debian 12's compiler) has known bugs around co_await; each rule
below is one this codebase hit (a double free or lost members under ASan):

  if-init      a co_await in an if/switch initializer:
                   if (auto r = co_await f(); r) ...
               Await into a named variable on its own line first.
  capture      a lambda that captures by value inside a co_await
               full-expression (the temporary closure is destroyed twice):
                   co_await pool.run([name] { ... });
               Capture by reference only ([&], [&x], [this]); the
               coroutine frame outlives the call.
  braced       a braced temporary inside a co_await full-expression
               (Type{...}, or {...} as an argument): destroyed twice, or
               miscompiled for nlohmann::json lists. Name it first.

Usage: check_coroutines.py [FILE_OR_DIR...]   (default: src)
Exit status 1 and one line per finding (file:line: rule: text) when any
pattern is found; a line ending in `// coroutine-ok: REASON` is exempt.
"""

import os
import re
import sys

EXEMPT = "coroutine-ok:"
OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {")": "(", "]": "[", "}": "{"}


def is_digit_separator(src: str, i: int) -> bool:
    """Whether the ' at `i` separates digits of a number (not a character
    literal such as 'x' or U'x')."""
    j = i
    while j > 0 and (src[j - 1].isalnum() or src[j - 1] == "_"):
        j -= 1
    word = src[j:i]
    return bool(word) and word[0].isdigit() and i + 1 < len(src) and src[i + 1].isalnum()


def blank_comments_and_literals(src: str) -> str:
    """The source with comments and string/char literal contents replaced by
    spaces (newlines kept), so brackets inside them are not counted."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in src[i:j]))
            i = j
        elif c == 'R' and src.startswith('R"', i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', src[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = src.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('R"' + "".join(ch if ch == "\n" else " " for ch in src[i + 2 : j - 1]) + '"')
            i = j
        elif c in "\"'":
            if c == "'" and is_digit_separator(src, i):  # 1'000, 0xFF'FF
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start` (or len(text))."""
    depth = 0
    for k in range(start, len(text)):
        if text[k] in OPENERS:
            depth += 1
        elif text[k] in CLOSERS:
            depth -= 1
            if depth == 0:
                return k
    return len(text)


def full_expression(text: str, at: int) -> tuple[int, int]:
    """[begin, end) of the statement or condition holding the co_await at `at`."""
    depth = 0
    begin = 0
    for k in range(at - 1, -1, -1):
        c = text[k]
        if c == "}" and depth == 0:  # the end of an earlier block or statement
            begin = k + 1
            break
        if c in CLOSERS:
            depth += 1
        elif c in OPENERS:
            if depth == 0:
                if c == "(":  # inside a condition or an argument list: keep going out
                    continue
                begin = k + 1
                break
            depth -= 1
        elif c == ";" and depth == 0:
            begin = k + 1
            break
    depth = 0
    end = len(text)
    for k in range(at, len(text)):
        c = text[k]
        if c in OPENERS:
            depth += 1
        elif c in CLOSERS:
            if depth == 0:
                end = k
                break
            depth -= 1
        elif c == ";" and depth == 0:
            end = k
            break
    return begin, end


LAMBDA_INTRO = re.compile(r"(^|[(,=!&|?:{;]|\breturn)\s*\[")


def lambdas(expr: str):
    """(capture list, body start, body end) of each lambda in `expr`."""
    for m in LAMBDA_INTRO.finditer(expr):
        open_sq = m.end() - 1
        close_sq = matching(expr, open_sq)
        k = close_sq + 1
        while k < len(expr) and expr[k].isspace():
            k += 1
        if k < len(expr) and expr[k] == "(":
            k = matching(expr, k) + 1
        brace = expr.find("{", k)
        if brace < 0 or not re.fullmatch(r"[\s\w:<>,&*\->]*", expr[k:brace]):
            continue
        yield expr[open_sq + 1 : close_sq], brace, matching(expr, brace)


def by_value(captures: str) -> bool:
    for item in (c.strip() for c in captures.split(",")):
        if item and not (item.startswith("&") or item == "this"):
            return True
    return False


BRACED = re.compile(r"([\w>]\s*\{)|([(,]\s*\{)")


def findings_in(path: str):
    with open(path, encoding="utf-8", errors="replace") as f:
        original = f.read()
    lines = original.split("\n")
    text = blank_comments_and_literals(original)

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    seen = set()
    for m in re.finditer(r"\bco_await\b", text):
        begin, end = full_expression(text, m.start())
        if (begin, end) in seen:
            continue
        seen.add((begin, end))
        expr = text[begin:end]
        line = line_of(m.start())
        if EXEMPT in lines[line - 1]:
            continue
        found = []
        stmt_if = re.match(r"\s*(if|switch)\s*(constexpr\s*)?\(", expr)
        if stmt_if:
            paren = begin + stmt_if.end() - 1
            close = matching(text, paren)
            inner = text[paren + 1 : close]
            semi = re.search(r";", inner)
            if semi and "co_await" in inner[: semi.start()]:
                found.append("if-init")
        # captures and braced temporaries (lambda bodies are their own code).
        rest = []
        last = 0
        for captures, body_begin, body_end in lambdas(expr):
            if body_begin < last:
                continue
            if by_value(captures):
                found.append("capture")
            rest.append(expr[last:body_begin])
            last = body_end + 1
        rest.append(expr[last:])
        flat = " ".join(rest)
        flat = re.sub(r"\b(if|while|for|switch|else|do|try)\b[^{]*$", "", flat)  # a statement's own block
        if BRACED.search(flat):
            found.append("braced")
        for rule in dict.fromkeys(found):
            yield f"{path}:{line}: {rule}: {lines[line - 1].strip()}"


def sources(args):
    for arg in args or ["src"]:
        if os.path.isfile(arg):
            yield arg
            continue
        for root, _, files in os.walk(arg):
            for name in sorted(files):
                if name.endswith((".cpp", ".h")):
                    yield os.path.join(root, name)


def main() -> int:
    findings = [f for path in sources(sys.argv[1:]) for f in findings_in(path)]
    for f in findings:
        print(f)
    if findings:
        print(f"{len(findings)} g++ 12 coroutine pattern(s); see {__file__} for each rule and its fix", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
