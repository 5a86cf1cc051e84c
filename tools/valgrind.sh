#!/usr/bin/env bash
# Pre-release check: the kernel tests under valgrind memcheck, on the normal optimised build
# (setup.py's -O3, with Python's -g: exactly the code users run, so nothing the sanitizers'
# -O1 build hides slips by). Fails on any memcheck error.
#
#   tools/valgrind.sh [pytest args...]     default: the kernel and hostile-input tests
#
# PYTHONMALLOC=malloc routes every Python allocation through malloc, so memcheck sees
# them; valgrind's python3.supp (shipped by the valgrind package) silences the
# interpreter's own known reports. Threads: fastnn's pool is real under valgrind (which
# serialises it), so FASTNN_NUM_THREADS=2 still exercises the threaded paths.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/src"
tar -C "$src" --exclude=.git --exclude=build --exclude='*.so' --exclude=fastnn/_kernels.c \
    --exclude=.venv --exclude=.hypothesis --exclude=.pytest_cache --exclude=__pycache__ \
    -cf - . | tar -C "$work/src" -xf -
cd "$work/src"
python3 setup.py build_ext --inplace -q >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }

supp=()
for f in /usr/lib/valgrind/python3.supp /usr/lib/x86_64-linux-gnu/valgrind/python3.supp \
         /usr/libexec/valgrind/python3.supp; do
    [ -f "$f" ] && supp+=("--suppressions=$f")
done

# The real interpreter, not a launcher script (pyenv shims are shell scripts).
python=$(python3 -c "import sys; print(sys.executable)")
export PYTHONMALLOC=malloc FASTNN_NUM_THREADS=2 FASTNN_FUZZ_EXAMPLES=${FASTNN_FUZZ_EXAMPLES:-5}
export FASTNN_SANITIZED=1
start=$(date +%s)
status=0
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(tests/kernels tests/test_hostile_inputs.py)
# Add --track-origins=yes when chasing an uninitialised read (it doubles the run time).
valgrind --tool=memcheck --leak-check=no --num-callers=30 "${supp[@]}" \
    --log-file="$work/memcheck.%p.log" "$python" -m pytest -q -p no:cacheprovider "${args[@]}" \
    || status=$?
elapsed=$(( $(date +%s) - start ))
# Judge the reports: an error with a frame in the extension (its .so, csrc/ or
# fastnn/_kernels) is ours and fails the run. Interpreter builds that valgrind's python
# suppressions do not cover (pyenv's, say: "python -c pass" alone reports uninitialised
# reads in int.from_bytes) are counted and listed, not failed on.
python3 - "$work" <<'PY' || status=1
import glob, os, re, sys
ours, foreign = [], 0
# valgrind names source files by basename, and a frame of a pool worker thread has only
# csrc's files and libc on its stack: match csrc's files by name.
names = [re.escape(f) for f in os.listdir("csrc")] + [r"_kernels\.(c|pyx)", r"_kernels\.cpython"]
ours_re = re.compile(r"[ (/](" + "|".join(names) + r")\b")
for log in glob.glob(sys.argv[1] + "/memcheck.*.log"):
    text = open(log).read()
    if "Process terminating with default action of signal" in text:
        sys.exit(f"valgrind.sh: a process died of a signal under valgrind:\n{text}")
    # A log without a summary is a forked child that exec'd another program (not traced).
    for block in re.split(r"\n==\d+== \n", text):
        lines = [l for l in block.splitlines() if l.startswith("==")]
        if not any(re.search(r"==\d+==    (at|by) 0x", l) for l in lines):
            continue
        if any(ours_re.search(l) for l in lines):
            ours.append(block)
        else:
            foreign += 1
print(f"valgrind.sh: {len(ours)} errors in fastnn's code, {foreign} elsewhere (interpreter)")
for block in ours:
    print(block)
sys.exit(1 if ours else 0)
PY
echo "valgrind.sh: exit $status, ${elapsed}s"
exit $status
