#!/usr/bin/env bash
# The generated man pages agree with what they are generated from, and render cleanly.
#
#   tests/e2e/man_check.sh BINARY MAN_DIR
#
# MAN_DIR holds portvigil.8 and portvigil.toml.5 as the build's `man` target wrote them.
# Checks: every option named in the binary's --help and in each command's --help is in
# portvigil.8, every key docs/config.md defines is in portvigil.toml.5 (make_man.py check),
# groff reports no warning for either page, man(1) renders them, and the generated bash
# completion knows every option and completes in bash-completion. Exit 0 pass,
# 1 fail, 77 skip (no python3, groff or man), unless PORTVIGIL_REQUIRE_TOOLS=1.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
binary=${1:?usage: man_check.sh BINARY MAN_DIR}
dir=${2:?usage: man_check.sh BINARY MAN_DIR}

[[ -r /usr/share/bash-completion/bash_completion ]] || missing_completion=1
for tool in python3 groff man ${missing_completion:+bash-completion}; do
  if ! command -v "$tool" >/dev/null; then
    if [[ ${PORTVIGIL_REQUIRE_TOOLS:-0} == 1 ]]; then
      echo "man_check: FAIL: $tool not found (PORTVIGIL_REQUIRE_TOOLS=1)" >&2
      exit 1
    fi
    echo "man_check: SKIP: $tool not found" >&2
    exit 77
  fi
done
fail=0
for page in portvigil.8 portvigil.toml.5; do
  [[ -s "$dir/$page" ]] || { echo "man_check: FAIL: $dir/$page missing (build the man target)" >&2; exit 1; }
  warnings=$(LC_ALL=C.UTF-8 groff -man -ww -z -K utf8 "$dir/$page" 2>&1)
  if [[ -n "$warnings" ]]; then
    echo "man_check: FAIL: groff warns about $page:" >&2
    echo "$warnings" >&2
    fail=1
  fi
  rendered=$(MANWIDTH=100 man -l "$dir/$page" 2>/dev/null)
  grep -q "^NAME" <<<"$rendered" || { echo "man_check: FAIL: man -l $page renders no NAME" >&2; fail=1; }
done
python3 "$ROOT/docs/man/make_man.py" check "$binary" "$ROOT/docs/config.md" \
  "$dir/portvigil.8" "$dir/portvigil.toml.5" "$dir/portvigil.bash-completion" || fail=1
# The completion completes, as bash-completion loads it.
complete_words() {
  bash -c 'source /usr/share/bash-completion/bash_completion && source "$0" &&
    COMP_WORDS=("$@") && COMP_CWORD=$(($# - 1)) && COMP_LINE="$*" && COMP_POINT=${#COMP_LINE} &&
    _portvigil && printf "%s\n" "${COMPREPLY[@]}"' "$dir/portvigil.bash-completion" "$@"
}
got=$(complete_words portvigil agent --web. | sort | tr '\n' ' ')
[[ $got == "--web.config.file --web.listen-address " ]] ||
  { echo "man_check: FAIL: 'portvigil agent --web.<TAB>' completes to '$got'" >&2; fail=1; }
got=$(complete_words portvigil base | tr '\n' ' ')
[[ $got == "baseline " ]] || { echo "man_check: FAIL: 'portvigil base<TAB>' gives '$got'" >&2; fail=1; }
got=$(complete_words portvigil baseline a | tr '\n' ' ')
[[ $got == "accept " ]] || { echo "man_check: FAIL: 'portvigil baseline a<TAB>' gives '$got'" >&2; fail=1; }
# The generated page is current: regenerating from the same binary changes nothing.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$ROOT/docs/man/make_man.py" portvigil "$binary" "$tmp/portvigil.8" &&
  cmp -s "$tmp/portvigil.8" "$dir/portvigil.8" ||
  { echo "man_check: FAIL: $dir/portvigil.8 is not what the binary's --help gives" >&2; fail=1; }
((fail == 0)) && echo "man_check: portvigil.8 and portvigil.toml.5 agree with --help and docs/config.md"
exit "$fail"
