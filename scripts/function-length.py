#!/usr/bin/env python3
"""Lists the functions in src/ longer than LIMIT lines (default 120) and exits 1 when there is one.

usage: scripts/function-length.py [LIMIT]

A brace matcher, not a parser: comments, string literals and raw strings are blanked first; a brace
block whose header has a parameter list and sits at namespace or class level is a function (lambdas
count towards the function that holds them). Tables of data are initialisers, not functions.
"""
import glob
import os
import re
import sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 120
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
found = 0


def strip(code):
    out = []; i = 0; n = len(code)
    while i < n:
        c = code[i]
        if code.startswith('//', i):
            j = code.find('\n', i); j = n if j < 0 else j; out.append(' ' * (j - i)); i = j; continue
        if code.startswith('/*', i):
            j = code.find('*/', i) + 2; out.append(re.sub(r'[^\n]', ' ', code[i:j])); i = j; continue
        if code.startswith('R"(', i):
            j = code.find(')"', i) + 2; out.append(re.sub(r'[^\n]', ' ', code[i:j])); i = j; continue
        if c == '"' or (c == "'" and not (i > 0 and code[i-1].isalnum())):
            j = i + 1
            while j < n and code[j] != c:
                if code[j] == '\\': j += 1
                j += 1
            out.append(c + ' ' * (j - i - 1) + c); i = j + 1; continue
        out.append(c); i += 1
    return ''.join(out)
for f in sorted(glob.glob(os.path.join(ROOT, 'src/**/*.cpp'), recursive=True) +
              glob.glob(os.path.join(ROOT, 'src/**/*.h'), recursive=True)):
    s = strip(open(f).read())
    stack = []; header_start = 0
    i = 0
    for m in re.finditer(r'[{};]', s):
        ch = m.group(0); pos = m.start()
        if ch == ';':
            header_start = pos + 1; continue
        if ch == '{':
            header = s[header_start:pos]
            h = header.strip()
            parent = stack[-1][0] if stack else 'ns'
            kind = 'other'
            if re.search(r'\bnamespace\b', h) and '(' not in h: kind = 'ns'
            elif re.match(r'(template\s*<.*>\s*)?(class|struct|union|enum)\b', h.split('\n')[-1].strip()) or re.search(r'^\s*(class|struct)\s+\w+[^(]*$', h, re.M) and '(' not in h: kind = 'class'
            elif parent in ('ns', 'class') and ')' in h and not re.match(r'^(if|for|while|switch|catch)\b', h): kind = 'fn'
            stack.append((kind, s.count('\n', 0, pos) + 1, h.split('\n')[-1][:80] if h else ''))
            header_start = pos + 1
        else:
            if stack:
                kind, line, name = stack.pop()
                end = s.count('\n', 0, pos) + 1
                if kind == 'fn' and end - line + 1 > LIMIT:
                    print(f'{end-line+1:4d} lines: {os.path.relpath(f, ROOT)}:{line} {name}')
                    found += 1
            header_start = pos + 1

if found:
    print(f"function-length: {found} function(s) in src/ longer than {LIMIT} lines; split them")
    sys.exit(1)
print(f"function-length: no function in src/ longer than {LIMIT} lines")
