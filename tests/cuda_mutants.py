"""Mutation testing of the CUDA kernels through the emulated launch.

For every ``__global__`` body in csrc/ (the shared math headers are covered by the CPU tests), each
arithmetic, comparison, logical, compound-assignment and index operator is mutated in turn
(``+`` -> ``-``, ``<`` -> ``<=``, ``a[i]`` -> ``a[i + 1]``, ...); the emulated module is rebuilt
from a copy of csrc/ with the mutant and ``pytest -k emulated`` runs against it. A mutant that
compiles and passes every emulated test *survived*: either the tests miss something, or the
mutant is equivalent (harmless); the harmless ones are listed in ``EXPLAINED`` with the reason.

    python tests/cuda_mutants.py                       # every kernel file (about 1 hour on 2 cores)
    python tests/cuda_mutants.py --files csrc/render/composite_cuda.cu --limit 5
    python tests/cuda_mutants.py --list                # print the mutants, run nothing

Exit status 1 when a survivor is not explained. The copy and its build live in --work
(default build/mutants/), reused between runs: only the mutated file recompiles.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")

# (file relative to csrc, kernel, the mutated line stripped, mutation) -> why it is harmless.
EXPLAINED: dict[tuple[str, str, str, str], str] = {}

SWAPS = {"+": "-", "-": "+", "*": "/", "/": "*", "%": "*", "<": "<=", "<=": "<", ">": ">=",
         ">=": ">", "==": "!=", "!=": "==", "&&": "||", "||": "&&", "+=": "-=", "-=": "+=",
         "*=": "/=", "/=": "*="}
TOKEN = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|"
                   r"[A-Za-z_]\w*|\d[\w.]*|->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||"
                   r"\+=|-=|\*=|/=|%=|&=|\|=|\^=|::|[^\s\w]", re.S)
OPERAND_END = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|\)|\]")
KEYWORDS = {"return", "case", "else", "do", "const", "if", "for", "while"}


@dataclasses.dataclass(frozen=True)
class Mutant:
    path: str       # relative to csrc
    kernel: str
    start: int      # character span replaced in the original file
    end: int
    replacement: str
    line: str       # the original line, stripped
    mutation: str   # e.g. "+ -> -", "[] -> [+1]"

    def key(self) -> tuple[str, str, str, str]:
        return (self.path, self.kernel, self.line, self.mutation)

    def ident(self) -> str:
        """Unique per mutant (two alike on one line differ by their offset)."""
        return f"{self.path}:{self.start}:{self.mutation}"

    def apply(self, text: str) -> str:
        return text[:self.start] + self.replacement + text[self.end:]


def kernel_bodies(text: str):
    """(kernel name, body start, body end) of every __global__ function, braces matched."""
    for m in re.finditer(r"__global__\s+void\s+(\w+)\s*\(", text):
        open_brace = text.index("{", m.end())
        depth, i = 0, open_brace
        while True:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        yield m.group(1), open_brace + 1, i


def template_closes(tokens, k: int) -> int | None:
    """If tokens[k] is '<' opening a template argument list (names, ::, commas, up to '>'
    followed by '(' or '::' or '>'), the index of its '>'; else None."""
    depth = 0
    for j in range(k, min(k + 40, len(tokens))):
        t = tokens[j][0]
        if t == "<":
            depth += 1
        elif t == ">":
            depth -= 1
            if depth == 0:
                nxt = tokens[j + 1][0] if j + 1 < len(tokens) else ""
                return j if nxt in ("(", "::", ">", "{") or re.match(r"[A-Za-z_]", nxt) else None
        elif t == ">>":
            return None
        elif not (re.fullmatch(r"[A-Za-z_]\w*|::|,|\*|\d+", t)):
            return None
    return None


def is_declarator(tokens, k: int) -> bool:
    """tokens[k] == '*' in `T* name = ...` (a local pointer declaration, not a product)."""
    before = tokens[k - 2][0] if k >= 2 else ";"
    nxt = [t for t, _ in tokens[k + 1:k + 3]]
    return (before in (";", "{", "}", "const", "(") and len(nxt) == 2
            and re.fullmatch(r"[A-Za-z_]\w*", nxt[0]) is not None and nxt[1] == "=")


def is_array_declaration(tokens, k: int) -> bool:
    """tokens[k] == '[' in `T name[N]` (enlarging a local array is harmless)."""
    if k < 2:
        return False
    ident = re.compile(r"[A-Za-z_]\w*")
    return (ident.fullmatch(tokens[k - 1][0]) is not None and ident.fullmatch(tokens[k - 2][0])
            is not None and tokens[k - 2][0] not in KEYWORDS)


def mutants_of(path: str, text: str) -> list[Mutant]:
    rel = os.path.relpath(path, CSRC)
    out = []
    for kernel, lo, hi in kernel_bodies(text):
        tokens = [(m.group(0), m.start() + lo) for m in TOKEN.finditer(text[lo:hi])]
        tokens = [t for t in tokens if not t[0].startswith(("//", "/*"))]
        skip = set()
        for k, (tok, pos) in enumerate(tokens):
            if k in skip:
                continue
            line_start = text.rfind("\n", 0, pos) + 1
            line = text[line_start:text.find("\n", pos)].strip()
            if tok == "<":
                close = template_closes(tokens, k)
                if close is not None:
                    skip.add(close)
                    continue
            if tok in SWAPS:
                prev = tokens[k - 1][0] if k else ""
                binary = bool(OPERAND_END.fullmatch(prev)) and prev not in KEYWORDS
                if tok in ("+", "-", "*") and not binary:
                    continue  # unary sign or dereference
                if tok == "*" and is_declarator(tokens, k):
                    continue
                out.append(Mutant(rel, kernel, pos, pos + len(tok), SWAPS[tok], line,
                                  f"{tok} -> {SWAPS[tok]}"))
            elif tok == "[" and not is_array_declaration(tokens, k):
                depth, j = 0, k
                while True:
                    t = tokens[j][0]
                    depth += t == "["
                    depth -= t == "]"
                    if depth == 0:
                        break
                    j += 1
                inner_lo, inner_hi = pos + 1, tokens[j][1]
                out.append(Mutant(rel, kernel, inner_lo, inner_hi,
                                  f"({text[inner_lo:inner_hi]}) + 1", line, "[i] -> [i + 1]"))
    return out


def all_mutants(files: list[str]) -> list[Mutant]:
    found = []
    for path in files:
        with open(path) as f:
            found += mutants_of(path, f.read())
    return found


def run(cmd, env, timeout):
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired:
        return None, "timeout"


FOCUS = {"triplane": "triplane", "composite": "composite", "importance": "sample_pdf or merge"}
TESTS = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "tests/test_emulated_cuda.py", "-k"]
# The headers every kernel translation unit parses (10 of its 17 s of compile time).
PCH_HEADERS = ["ATen/Dispatch.h", "ATen/ops/empty.h", "ATen/ops/zeros.h", "ATen/AccumulateType.h",
               "ATen/core/Tensor.h"]


class Worker:
    """A copy of csrc/ and its emulated build; mutants are applied to the copy one at a time."""

    def __init__(self, work: str, timeout: float):
        self.tree = os.path.join(work, "csrc")
        self.build_dir = os.path.join(work, "build")
        self.timeout = timeout
        if os.path.exists(self.tree):
            shutil.rmtree(self.tree)
        shutil.copytree(CSRC, self.tree)
        self.env = dict(os.environ, NGK_EMULATION_CSRC=self.tree,
                        NGK_EMULATION_BUILD_DIR=self.build_dir)

    def prepare(self) -> str | None:
        """Builds the unmutated copy, then again with a precompiled header of PCH_HEADERS made
        with the exact flags of that build. Returns an error log, or None."""
        build_timeout = max(self.timeout, 1800)  # a full build of the copy, not one mutant
        code, log = run(TESTS + ["every_global_kernel"], self.env, build_timeout)
        if code != 0:
            return log
        ninja = open(os.path.join(self.build_dir, "build.ninja")).read()
        flag = {k: re.search(rf"^{k} = (.*)$", ninja, re.M).group(1) for k in ("cxx", "cflags", "post_cflags")}
        header = os.path.join(self.build_dir, "pch", "mutant_pch.h")
        os.makedirs(os.path.dirname(header), exist_ok=True)
        with open(header, "w") as f:
            f.write("".join(f"#include <{h}>\n" for h in PCH_HEADERS))
        subprocess.run(f"{flag['cxx']} {flag['cflags']} {flag['post_cflags']} -x c++-header "
                       f"{header} -o {header}.gch", shell=True, check=True, cwd=self.build_dir)
        self.env["NGK_EMULATION_CFLAGS"] = f"-include {header} -Winvalid-pch"
        code, log = run(TESTS + ["every_global_kernel"], self.env, build_timeout)
        return None if code == 0 else log

    def verdict(self, m: Mutant) -> str:
        path = os.path.join(self.tree, m.path)
        with open(os.path.join(CSRC, m.path)) as f:
            original = f.read()
        with open(path, "w") as f:
            f.write(m.apply(original))
        try:
            # The tests build the mutant themselves (their module fixture).
            stem = next((v for k, v in FOCUS.items() if k in m.path), "emulated")
            code, log = run(TESTS + [f"emulated and ({stem})"], self.env, self.timeout)
            if code == 0:  # survived the focused tests: try every emulated test
                code, log = run(TESTS + ["emulated"], self.env, self.timeout)
        finally:
            with open(path, "w") as f:
                f.write(original)
        if "Error building extension" in log:
            return "does not compile"
        if code is None:
            return "killed (timeout)"
        if code != 0:
            return "killed" if code > 0 else "killed (crash)"
        return "SURVIVED"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", nargs="*", help="kernel sources (default: every csrc/**/*.cu*)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many mutants per file")
    ap.add_argument("--list", action="store_true", help="print the mutants and exit")
    ap.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "mutants"))
    ap.add_argument("--timeout", type=float, default=180,
                    help="seconds per test run (a mutant that loops forever is killed by it)")
    ap.add_argument("--results", default=None,
                    help="JSON-lines checkpoint of the verdicts (default: WORK/results.jsonl); "
                         "mutants already in it are not run again")
    args = ap.parse_args(argv)

    files = [os.path.abspath(f) for f in args.files] if args.files else sorted(
        glob.glob(os.path.join(CSRC, "**", "*.cu*"), recursive=True))
    mutants = all_mutants(files)
    if args.limit:
        per_file: dict[str, int] = {}
        kept = []
        for m in mutants:
            per_file[m.path] = per_file.get(m.path, 0) + 1
            if per_file[m.path] <= args.limit:
                kept.append(m)
        mutants = kept
    if args.list:
        for m in mutants:
            print(f"{m.path}:{m.kernel}: {m.mutation:16s} {m.line}")
        print(f"{len(mutants)} mutants")
        return 0

    results_path = args.results or os.path.join(args.work, "results.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
    verdicts: dict[Mutant, str] = {}
    by_ident = {m.ident(): m for m in mutants}
    if os.path.exists(results_path):
        with open(results_path) as f:
            for row in map(json.loads, f):
                if row["ident"] in by_ident:
                    verdicts[by_ident[row["ident"]]] = row["verdict"]
    todo = [m for m in mutants if m not in verdicts]
    print(f"{len(mutants)} mutants, {len(mutants) - len(todo)} already in {results_path}", flush=True)

    workers = [Worker(os.path.join(args.work, f"w{i}"), args.timeout)
               for i in range(min(args.jobs, max(len(todo), 1)))]
    with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
        for log in pool.map(Worker.prepare, workers if todo else []):
            if log is not None:
                print(log[-3000:])
                print("the unmutated copy does not build or pass")
                return 2
    started = time.time()
    free = list(workers)
    lock = threading.Lock()

    def test(m: Mutant) -> None:
        with lock:
            worker = free.pop()
        try:
            verdict = worker.verdict(m)
        finally:
            with lock:
                free.append(worker)
        with lock:
            verdicts[m] = verdict
            with open(results_path, "a") as f:
                f.write(json.dumps({"ident": m.ident(), "verdict": verdict, "kernel": m.kernel,
                                    "line": m.line}) + "\n")
                print(f"[{len(verdicts)}/{len(mutants)} {time.time() - started:5.0f}s] "
                      f"{verdicts[m]:16s} {m.path}:{m.kernel}: {m.mutation}  | {m.line}", flush=True)

    with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
        list(pool.map(test, todo))

    survivors = [m for m in mutants if verdicts[m] == "SURVIVED"]
    killed = sum(v.startswith("killed") for v in verdicts.values())
    stillborn = sum(v == "does not compile" for v in verdicts.values())
    print(f"\n{len(mutants)} mutants: {killed} killed, {stillborn} did not compile, "
          f"{len(survivors)} survived ({time.time() - started:.0f} s, {len(workers)} jobs)")
    unexplained = 0
    for m in survivors:
        reason = EXPLAINED.get(m.key())
        if reason is None:
            unexplained += 1
        print(f"  survived {m.path}:{m.kernel}: {m.mutation} | {m.line}\n"
              f"    {reason or 'UNEXPLAINED: a test is missing or the mutant is equivalent'}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
