#!/usr/bin/env bash
# The C style of csrc/ (docs/design.md, "C style"), checked: CI runs it with the linters.
#
#   tools/check_c_style.sh [FILE...]     default: csrc/*.c csrc/*.h
#
# Checked: at most 100 columns, spaces only (no tabs), no trailing whitespace, no carriage
# returns, /* */ comments only; a function's opening brace on a line of its own; a block's
# body 4 columns deeper than the line that opens it (case labels at the level of their
# switch); every statement indented by a multiple of 4 columns (continuation lines are free).
# The rest of the convention (how a wrapped declaration or call groups its parameters, aligned
# macro tables and comments) is the author's: no formatter enforces it. Prints FILE:LINE:
# problem for each violation and fails if there is one.
set -euo pipefail
if [ $# -eq 0 ]; then
    cd "$(dirname "$0")/.."
    set -- csrc/*.c csrc/*.h
fi

LC_ALL=C awk -v max=100 '
function report(msg) {
    printf "%s:%d: %s\n", FILENAME, FNR, msg
    bad++
}
function indent_of(s) {
    match(s, /^ */)
    return RLENGTH
}
FNR == 1 {
    in_comment = 0      # inside a /* ... */ that spans lines
    opener = 0          # the previous code line opened a block ...
    opener_indent = 0   # ... at this indentation
    ends_statement = 1  # the previous code line ended a statement, label or block
}
{
    line = $0
    if (line ~ /\r$/) report("carriage return (the files have Unix line endings)")
    if (index(line, "\t")) report("tab (indent with spaces)")
    if (line ~ / $/) report("trailing whitespace")
    if (length(line) > max) report("line of " length(line) " columns (at most " max ")")

    # The code part of the line: block comments and a continuation backslash removed.
    code = line
    if (in_comment) {
        if (index(code, "*/") == 0) next
        code = substr(code, index(code, "*/") + 2)
        in_comment = 0
    }
    while ((start = index(code, "/*")) > 0) {
        rest = substr(code, start + 2)
        if ((stop = index(rest, "*/")) == 0) {
            in_comment = 1
            code = substr(code, 1, start - 1)
            break
        }
        code = substr(code, 1, start - 1) " " substr(rest, stop + 2)
    }
    if (code ~ /(^|[^:"])\/\//) report("// comment (the files use /* */ comments)")
    sub(/\\$/, "", code)
    sub(/ +$/, "", code)
    if (code ~ /^ *$/ || code ~ /^ *#/) next

    ind = indent_of(code)
    if (ends_statement && !opener && ind % 4 != 0)
        report("statement indented " ind " (a multiple of 4 columns)")
    if (opener && code !~ /^ *[}]/) {
        is_case = code ~ /^ *(case [^:]+|default) *:/
        want = opener_indent + (is_case ? 0 : 4)
        if (ind != want)
            report((is_case ? "case label" : "block body") " indented " ind ", expected " want)
    }
    if (code ~ /^[A-Za-z_].*\) *[{]$/ && code !~ /^(typedef|struct|union|enum|extern)/ \
        && code !~ /=/)
        report("a function body opens with { on a line of its own")

    # Does this line open a block, and where does its statement start?
    # (The body of extern "C" { is not indented.)
    opener = code ~ /[{]$/ && (ends_statement || code ~ /^ *([{]|[}].*)$/) \
        && code !~ /^extern "C"/
    opener_indent = ind
    ends_statement = code ~ /[;{}:]$/
}
END { exit bad > 0 }
' "$@"
