#!/usr/bin/env bash
# A stand-in for an LLM agent, used by retort's end-to-end tests: the one
# thing the tests do not run for real. Like a real agent in a tmux pane, it
# reads each pasted prompt from its terminal, and ends each step by running
# `retort signal` (found on the PATH that retort gives the session).
#
# A prompt ends at its footer's last line ("Then wait: ..." or "This is the
# last step: ..."). Each prompt is saved, with the step retort had marked
# current when the prompt arrived, as $AGENT_TRANSCRIPT/N-STEP.txt (default:
# the run directory's agent-transcript/).
#
# What it does at a step, from the environment:
#   AGENT_EXIT_AT=STEP      exit without signalling, with $AGENT_EXIT_STATUS (default 7)
#   AGENT_FAIL_AT=STEP      signal failed --reason "$AGENT_REASON"
#   AGENT_ESCALATE_AT=STEP  signal escalate --reason "$AGENT_REASON"
#   AGENT_HANG_AT=STEP      never signal: wait on a child process (its pid
#                           in $AGENT_TRANSCRIPT/hang-pid.txt) that never ends
#   AGENT_KILL_SESSION_AT=STEP  kill its own tmux session
#   AGENT_EXIT_ONCE_AT=STEP exit without signalling the first time it gets STEP
#   AGENT_SLEEP_MS=N        take N ms over each step first (with
#                           AGENT_SLEEP_AT=STEP, over that step only)
#   AGENT_PHASE_AT=STEP     write `PHASE:$AGENT_PHASE` (default escalate) to
#                           its $PHASE_FILE, as the seed formula says, then
#                           exit (headless) or wait for the next prompt
#   AGENT_OUTPUT=TEXT       signal done --output TEXT (STEP in it: the step)
# Otherwise it signals done.
#
# Run headless (`retort run --backend headless`), it gets one prompt on its
# standard input, and exits when the input ends, as print modes do; each
# process adds "STEP N" ($RETORT_STEP, $RETORT_SESSION_STEP) to
# $AGENT_TRANSCRIPT/headless-steps.txt.
#
# Like a real agent, it starts by drawing a banner and its prompt marker
# ("agent>"). With AGENT_STARTUP_MS=N it takes N ms to start first, and
# throws away whatever was typed meanwhile, as terminal programs that flush
# their input when they start do.
set -u
: "${AGENT_TRANSCRIPT:=${RETORT_RUN_DIR:?not inside a retort run}/agent-transcript}"
mkdir -p "$AGENT_TRANSCRIPT"
printf 'RETORT_RUN_DIR=%s\nPHASE_FILE=%s\nretort=%s\n' \
  "${RETORT_RUN_DIR:-}" "${PHASE_FILE:-}" "$(command -v retort)" > "$AGENT_TRANSCRIPT/env.txt"

if [ -n "${AGENT_STARTUP_MS:-}" ]; then
  sleep "$((AGENT_STARTUP_MS / 1000)).$(printf '%03d' $((AGENT_STARTUP_MS % 1000)))"
  discarded=0
  while IFS= read -r -t 0.05 _; do discarded=$((discarded + 1)); done
  printf '%s\n' "$discarded" > "$AGENT_TRANSCRIPT/discarded.txt"
fi
printf 'scripted agent (a stand-in for an LLM agent)\nagent> '

# Prompts are numbered across processes (sessions, headless steps).
n=$(find "$AGENT_TRANSCRIPT" -maxdepth 1 -name '[0-9]*-*.txt' | wc -l)
if [ -n "${RETORT_SESSION_STEP:-}" ]; then
  printf '%s %s\n' "${RETORT_STEP:-}" "$RETORT_SESSION_STEP" >> "$AGENT_TRANSCRIPT/headless-steps.txt"
fi
prompt=""
while IFS= read -r line; do
  line=${line%$'\r'}
  [ -z "$prompt" ] && [ -z "$line" ] && continue
  prompt+="$line"$'\n'
  case "$line" in
    "Then wait: the next step will be sent to you."* | "This is the last step: after signalling, you are finished."*) ;;
    *) continue ;;
  esac
  n=$((n + 1))
  # Headless, the process's own step; in tmux, its session's current step.
  if [ -n "${RETORT_STEP:-}" ]; then
    step=$RETORT_STEP
  else
    step=$(cat "${RETORT_CURRENT_STEP_FILE:-$RETORT_RUN_DIR/current_step}")
  fi
  printf '%s' "$prompt" > "$AGENT_TRANSCRIPT/$n-$step.txt"
  prompt=""
  if [ -n "${AGENT_SLEEP_MS:-}" ] && [ "${AGENT_SLEEP_AT:-$step}" = "$step" ]; then
    sleep "$((AGENT_SLEEP_MS / 1000)).$(printf '%03d' $((AGENT_SLEEP_MS % 1000)))"
  fi
  # AGENT_EXIT_ONCE_AT=STEP: exit without signalling the first time only
  # (a crash that a retry gets past).
  if [ "$step" = "${AGENT_EXIT_ONCE_AT:-}" ] && [ ! -e "$AGENT_TRANSCRIPT/exited-once-$step" ]; then
    : > "$AGENT_TRANSCRIPT/exited-once-$step"
    exit "${AGENT_EXIT_STATUS:-7}"
  fi
  case "$step" in
    "${AGENT_EXIT_AT:-}") exit "${AGENT_EXIT_STATUS:-7}" ;;
    "${AGENT_FAIL_AT:-}") retort signal failed --reason "${AGENT_REASON:-}" ;;
    "${AGENT_ESCALATE_AT:-}") retort signal escalate --reason "${AGENT_REASON:-}" ;;
    "${AGENT_PHASE_AT:-}") printf 'PHASE:%s\n' "${AGENT_PHASE:-escalate}" > "$PHASE_FILE" ;;
    "${AGENT_HANG_AT:-}")
      # Hang, with a child of its own, as an agent stuck in a tool call.
      sleep 2147483647 &
      printf '%s\n' "$!" > "$AGENT_TRANSCRIPT/hang-pid.txt"
      wait
      ;;
    "${AGENT_KILL_SESSION_AT:-}") tmux kill-session ;;
    *)
      # AGENT_OUTPUT: the step's output, `STEP` in it replaced by the step.
      if [ -n "${AGENT_OUTPUT:-}" ]; then
        retort signal done --output "${AGENT_OUTPUT//STEP/$step}"
      else
        retort signal done
      fi
      ;;
  esac
done
