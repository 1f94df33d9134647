#!/usr/bin/env bash
# The bash baseline for benches/preflight.rs: the same facts retort's local
# preflight gathers, collected the way shell supervisors do today (free, df,
# ps, tmux, ls/stat, kill -0, tail, git), printed as text.
#
# Usage: preflight-baseline.sh FIXTURE_DIR TMUX_SOCKET
set -u
F=$1
SOCK=$2

echo "== system"
free -m
df -m /
cat /proc/loadavg
uptime
nproc
ps -eo pid,rss,etimes,args --sort=-rss | head -n 11

echo "== tmux"
tmux -S "$SOCK" ls -F '#{session_name} #{session_windows} #{session_attached} #{session_created} #{session_activity}' 2>/dev/null
tmux -S "$SOCK" list-panes -a -F '#{session_name} #{pane_id} #{pane_pid} #{pane_dead} #{pane_dead_status} #{pane_current_command}' 2>/dev/null

echo "== phase files"
for f in "$F"/phase/*-session-*.phase; do
  [ -e "$f" ] || continue
  echo "$f $(head -n 1 "$f") $(( $(date +%s) - $(stat -c %Y "$f") ))"
done

echo "== locks"
for f in "$F"/locks/*-poll.lock "$F"/locks/*-run.lock; do
  [ -e "$f" ] || continue
  pid=$(head -n 1 "$f")
  if kill -0 "$pid" 2>/dev/null; then alive=yes; else alive=no; fi
  echo "$f $pid $alive $(( $(date +%s) - $(stat -c %Y "$f") ))"
done

echo "== logs"
for f in "$F"/logs/*.log; do
  [ -e "$f" ] || continue
  echo "$f $(stat -c '%s %Y' "$f")"
  tail -n 15 "$f"
done

echo "== git"
R=$F/repo
git -C "$R" rev-parse --abbrev-ref HEAD
git -C "$R" status --porcelain | wc -l
git -C "$R" rev-list --left-right --count '@{upstream}...HEAD' 2>/dev/null || echo "no upstream"
[ -d "$(git -C "$R" rev-parse --git-dir)/rebase-merge" ] && echo "rebase in progress"
[ -f "$(git -C "$R" rev-parse --git-dir)/MERGE_HEAD" ] && echo "merge in progress"
git -C "$R" worktree list
for d in "$F"/wt/*-worktree-*; do
  [ -d "$d" ] || continue
  echo "$d $(( $(date +%s) - $(stat -c %Y "$d") ))"
done

echo "== escalations"
for f in "$F"/escalations/*.md; do
  [ -e "$f" ] || continue
  echo "$f $(grep -m 1 '^#' "$f") $(( $(date +%s) - $(stat -c %Y "$f") ))"
done

echo "== commands"
cat /proc/loadavg
