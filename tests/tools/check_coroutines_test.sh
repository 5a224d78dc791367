#!/bin/bash
# The g++ 12 coroutine check: src/ and tests/ are clean, and each pattern in
# the fixture is found on its line with its rule (nothing else is).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
check="$root/tools/check_coroutines.py"
fail=0
if ! out=$(python3 "$check" "$root/src" "$root/tests" 2>&1); then
  echo "g++ 12 coroutine patterns in the tree:"; echo "$out"; fail=1
fi
fixture="$here/coroutine_patterns.fixture"
expected=$(grep -n "// finds: " "$fixture" | sed -E 's/^([0-9]+):.*finds: ([a-z-]+).*/\1 \2/' | sort)
if python3 "$check" "$fixture" > /tmp/coroutine_check.$$ 2>/dev/null; then
  echo "the fixture passed the check"; fail=1
fi
found=$(sed -E 's/^[^:]+:([0-9]+): ([a-z-]+):.*/\1 \2/' /tmp/coroutine_check.$$ | sort)
rm -f /tmp/coroutine_check.$$
if [ "$found" != "$expected" ]; then
  echo "fixture findings differ:"; diff <(echo "$expected") <(echo "$found"); fail=1
fi
exit $fail
