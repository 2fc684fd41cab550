#!/usr/bin/env bash
# The exercise notebooks (assignment/) for a class, with nbgrader:
#
#   scripts/assignment.sh generate                 student versions -> assignment/release/<A>/
#   scripts/assignment.sh grade SUBMISSIONS_DIR    autograde SUBMISSIONS_DIR/<student>/<A>.ipynb:
#                                                  score table, feedback in assignment/feedback/
#   scripts/assignment.sh lab                      JupyterLab on assignment/ (students and teachers;
#                                                  extra arguments go to scripts/lab.sh)
#
# First installs what it needs, like scripts/lab.sh --install-only (the Rust kernel, the pinned
# venv with nbgrader); a second run changes nothing. Options: scripts/assignment.sh --help, and
# docs/TEACHING.md for the whole workflow. Both generate and grade run offline.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
    ""|-h|--help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        [ -x "$ROOT/.venv/bin/python" ] && "$ROOT/.venv/bin/python" "$ROOT/scripts/assignment.py" --help
        exit 0 ;;
esac
if [ "$1" = lab ]; then
    shift
    KLAYER_LAB_ROOT="$ROOT/assignment" exec bash "$ROOT/scripts/lab.sh" "$@"
fi
bash "$ROOT/scripts/lab.sh" --install-only | sed 's/^/[assignment.sh] /'
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/assignment.py" "$@"
