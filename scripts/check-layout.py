#!/usr/bin/env python3
"""Checks two rules of the workspace's layout (run by .ci/run):

1. No two source files import each other, directly or around a loop. An import is a
   `use` of, or an inline path into, another file's module (`crate::a::b`, `super::x`,
   `self::x`); a path resolves to the longest module prefix that is a file. A crate's
   root (lib.rs or main.rs, also a test binary's main.rs) is its facade of `mod`
   declarations and re-exports, so edges to and from it are not counted; a path to
   an item the root re-exports (`crate::Store` for `pub use store::Store`) counts as a
   path to the file that defines it.
2. No source file over 500 lines, unless its first line says why one cohesive thing
   needs the length (the words "one file" must appear in it).

Exits 1 naming every cycle and every long file.
"""

import os
import re
import sys

MAX_LINES = 500
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_files(base, root_file):
    """Maps module paths (tuples) to files for the tree whose root is `root_file`."""
    mods = {(): root_file}
    for dirpath, _, files in os.walk(base):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            if path == root_file:
                continue
            rel = os.path.relpath(path, base)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                continue
            mods[tuple(rel)] = path
    return mods


PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S | re.M)
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_0-9]+)\s*\{", re.M)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def expand_use(tree):
    """`a::{b, c::{d}}` -> ["a::b", "a::c::d"] (enough for resolving modules)."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for p in parts:
            if not p:
                continue
            if "{" in p:
                head, rest = p.split("{", 1)
                walk(prefix + head, rest[:-1])
            else:
                out.append(prefix + p.split(" as ")[0])

    walk("", tree)
    return out


def imports(text, module):
    """Module paths this file's text refers to, relative to `module`."""
    text = strip_comments(text)
    # Inside an inline `mod x {` (tests), `super` is the file's own module: those
    # paths are the file's own and say nothing about other files.
    inline = INLINE_MOD.search(text)
    cut = inline.start() if inline else len(text)
    found = []
    for chunk, own in ((text[:cut], module), (text[cut:], None)):
        paths = []
        for m in USE.finditer(chunk):
            paths.extend(expand_use(m.group(1)))
        paths.extend(m.group(0) for m in PATH.finditer(chunk))
        for p in paths:
            parts = p.split("::")
            if parts[0] not in ("crate", "super", "self"):
                continue
            base = module if own is not None else module + ("tests",)
            if parts[0] == "crate":
                target = []
            elif parts[0] == "self":
                target = list(base)
            else:
                target = list(base)
                while parts and parts[0] == "super":
                    parts = parts[1:]
                    target = target[:-1]
                parts = ["super"] + parts
            found.append(tuple(target) + tuple(x for x in parts[1:] if x not in ("*", "self")))
    return found


def root_exports(root_file):
    """Item name -> module path, for the crate root's `pub use` of its own modules."""
    with open(root_file, encoding="utf-8") as f:
        text = strip_comments(f.read())
    out = {}
    for m in re.finditer(r"^\s*pub\s+use\s+([^;]+);", text, re.M):
        for p in expand_use(m.group(1)):
            parts = [x for x in p.split("::") if x not in ("crate", "self")]
            if len(parts) >= 2 and parts[-1] not in ("*",):
                out[parts[-1]] = tuple(parts[:-1])
    return out


def resolve(path, mods, exports):
    if len(path) >= 1 and path[0] in exports and () in mods and path[:1] not in mods:
        path = exports[path[0]] + path[1:]
    for n in range(len(path), -1, -1):
        if path[:n] in mods:
            return path[:n]
    return ()


def cycles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            strong(v)
    return out


def trees():
    crates = os.path.join(ROOT, "crates")
    for name in sorted(os.listdir(crates)):
        c = os.path.join(crates, name)
        src = os.path.join(c, "src")
        for root in ("lib.rs", "main.rs"):
            if os.path.exists(os.path.join(src, root)):
                yield src, os.path.join(src, root)
                break
        tests = os.path.join(c, "tests")
        if os.path.isdir(tests):
            for t in sorted(os.listdir(tests)):
                d = os.path.join(tests, t)
                if os.path.isdir(d) and os.path.exists(os.path.join(d, "main.rs")):
                    yield d, os.path.join(d, "main.rs")


def main():
    failed = False
    for base, root_file in trees():
        mods = module_files(base, root_file)
        exports = root_exports(root_file)
        files = {v: k for k, v in mods.items()}
        edges = {}
        for path, module in files.items():
            if module == ():
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for p in imports(text, module):
                target = resolve(p, mods, exports)
                if target not in ((), module):
                    edges.setdefault(mods[module], set()).add(mods[target])
        for comp in cycles(edges):
            failed = True
            rel = [os.path.relpath(p, ROOT) for p in comp]
            print("import cycle: " + " <-> ".join(rel))
    for dirpath, _, fs in os.walk(os.path.join(ROOT, "crates")):
        if "/target" in dirpath:
            continue
        for f in fs:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            if len(lines) > MAX_LINES + 1 and "one file" not in lines[0]:
                failed = True
                print(f"{os.path.relpath(path, ROOT)}: {len(lines) - 1} lines; split it, "
                      "or say in its first line why one file holds it")
    if failed:
        sys.exit(1)
    print("layout: no import cycle, no file over", MAX_LINES, "lines without a reason")


if __name__ == "__main__":
    main()
