#!/usr/bin/env bash
# Side-by-side throughput and latency of Fabric's Kafka orderer and kord on one Kafka.
#
#   FABRIC_ORDERER=/path/to/fabric/orderer FABRIC_CFG=/path/to/fabric/sampleconfig bench/sidebyside.sh
#
# FABRIC_ORDERER is a Fabric v2.5 `orderer` binary you built yourself (this script never
# fetches or builds Fabric); FABRIC_CFG is a directory with Fabric's orderer.yaml (default:
# kord's config/). Without FABRIC_ORDERER only kord is measured.
#
# What it does, all on loopback: builds kord's orderer and kordctl, generates crypto and a
# network spec with `orderer dev`, starts `kordctl kafka` (in memory), writes a system-channel
# genesis block (Kafka, MaxMessageCount 500, BatchTimeout 200ms), then for each orderer in
# turn (Fabric first): starts it with the same genesis block and its own ledger, creates the
# channel (first orderer) or waits until it has caught up with the chain (second), runs
# `kordctl bench` for each run below, and stops it. Only one orderer runs at a time, so the
# two do not share the machine's cores; both write the same chain.
#
# Settings (environment): WORK (a fresh temporary directory), COUNT (60000 envelopes per
# throughput run), STREAMS ("1 16"; empty skips the throughput runs), RATE (5000 envelopes/s for the latency run; empty skips it),
# RATE_DURATION (20s), RATE_RUNS (1: how many times each latency run is repeated), SMALL_BATCH (100: the latency run again with MaxMessageCount set to
# this by a config update, then set back to 500; empty skips it), SIZE (1024), PORT_BASE (17050: orderers on PORT_BASE and +1, Kafka on
# PORT_BASE+2042). SOAK (e.g. 5m; empty skips it): after kord's runs, a run of that length
# at SOAK_RATE (10000) envelopes/s on 16 streams, after a SOAK_WARMUP (60s) run at that
# rate, while the orderer's resident size (VmRSS) is sampled every 10 s into
# $WORK/soak-rss.txt (envelopes signed on the fly); the growth from the soak's first to its
# last minute is printed. FOLLOWERS (e.g. 10; empty skips it): after that, the orderer's resident size while
# it delivers a FOLLOW_BLOCKS-block (10000) chain to one follower, then to FOLLOWERS at once
# (see followers below).
#
# BROKER (kfake): the Kafka both orderers use. kfake is `kordctl kafka`, in memory in one Go
# process; apache is Apache Kafka 3.9 (installed by integration/apache-kafka/install.sh into
# .cache, as `make test-kafka` does) with APACHE_BROKERS (1) brokers in KRaft mode, their data
# in KAFKA_DIR ($WORK/kafka-cluster), started by integration/apachekafka/cmd/kafkacluster;
# topics then get a replication factor of min(3, APACHE_BROKERS). KAFKA_DIR on another
# filesystem (e.g. under /dev/shm) keeps the broker's writes off the disk the ledgers sync to,
# as in a deployment with Kafka on machines of its own.
#
# Results: one JSON line per run in $WORK/results.jsonl (with "orderer_kind" and "run"
# added), the machine in $WORK/machine.txt, the orderer's /metrics after each run in
# $WORK/metrics-N-KIND.txt, and logs in $WORK.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/kord-sidebyside-XXXXXX)}
COUNT=${COUNT:-60000}
STREAMS=${STREAMS-1 16}
RATE=${RATE-5000}
RATE_DURATION=${RATE_DURATION:-20s}
RATE_RUNS=${RATE_RUNS:-1}
SIZE=${SIZE:-1024}
SMALL_BATCH=${SMALL_BATCH-100}
PORT_BASE=${PORT_BASE:-17050}
BROKER=${BROKER:-kfake}
KAFKA_DIR=${KAFKA_DIR:-$WORK/kafka-cluster}
APACHE_BROKERS=${APACHE_BROKERS:-1}
FABRIC_CFG=${FABRIC_CFG:-$here/config}
fabric_port=$PORT_BASE
kord_port=$((PORT_BASE + 1))
kafka_addr=127.0.0.1:$((PORT_BASE + 2042))

mkdir -p "$WORK"
cd "$WORK"
echo "work directory: $WORK" >&2

(cd "$here" && go build -o "$WORK/bin/orderer" ./cmd/orderer && go build -o "$WORK/bin/kordctl" ./cmd/kordctl)
K=$WORK/bin/kordctl

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# Crypto and a network spec from `orderer dev`, stopped as soon as it has written them.
"$WORK/bin/orderer" dev --dir "$WORK/dev" --listen 127.0.0.1:$((PORT_BASE + 3)) --ops 127.0.0.1:$((PORT_BASE + 4)) >dev.log 2>&1 &
devpid=$!
for _ in $(seq 100); do [ -s dev/network.yaml ] && break; sleep 0.2; done
kill "$devpid"; wait "$devpid" 2>/dev/null || true

replication=1
home=""
case $BROKER in
kfake)
	"$K" kafka --listen "$kafka_addr" >kafka.out 2>kafka.log &
	pids+=($!)
	kafka_pid=$!
	;;
apache)
	home=$(cd "$here" && integration/apache-kafka/install.sh 2>>"$WORK/kafka.log")
	(cd "$here" && go build -o "$WORK/bin/kafkacluster" ./integration/apachekafka/cmd/kafkacluster)
	"$WORK/bin/kafkacluster" --home "$home" --dir "$KAFKA_DIR" --brokers "$APACHE_BROKERS" \
		--addrs-file "$WORK/kafka.addrs" >kafka.out 2>>kafka.log &
	pids+=($!)
	kafka_pid=$!
	for _ in $(seq 180); do [ -s kafka.addrs ] && break; kill -0 "$kafka_pid" || break; sleep 1; done
	[ -s kafka.addrs ] || { echo "Apache Kafka did not start (kafka.log)" >&2; exit 1; }
	kafka_addr=$(cat kafka.addrs)
	replication=$((APACHE_BROKERS < 3 ? APACHE_BROKERS : 3))
	;;
*) echo "BROKER=$BROKER: want kfake or apache" >&2; exit 1 ;;
esac
echo "broker: $BROKER $kafka_addr" >&2
orderer_pid=""

awk -v kafka="$kafka_addr" -v e1="127.0.0.1:$fabric_port" -v e2="127.0.0.1:$kord_port" '
	/^kafka:/ { print; inkafka = 1; next }
	inkafka && /^    brokers:/ { print; n = split(kafka, k, ","); for (i = 1; i <= n; i++) print "        - " k[i]; skip = 1; next }
	skip && /^        - / { next }
	{ skip = 0 }
	/^[a-z]/ { inkafka = 0 }
	/^      endpoints:/ { print; print "        - " e1; print "        - " e2; skipe = 1; next }
	skipe && /^        - / { next }
	{ skipe = 0 }
	/^    timeout:/ { print "    timeout: 200ms"; next }
	/^    maxMessageCount:/ { print "    maxMessageCount: 500"; next }
	{ print }' dev/network.yaml >network.yaml
"$K" genesis --spec network.yaml --out genesis.block
"$K" genesis channel-tx --spec network.yaml --channel bench --out bench.tx
"$K" genesis channel-tx --spec network.yaml --channel deliver --out deliver.tx

crypto=$WORK/dev/crypto
orderer_msp=$crypto/ordererOrganizations/example.com/orderers/orderer0.example.com/msp
admin_msp=$crypto/peerOrganizations/org1.example.com/users/Admin@org1.example.com/msp
orderer_admin_msp=$crypto/ordererOrganizations/example.com/users/Admin@example.com/msp
user_msp=$crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp

{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc)"
	grep -m1 'model name' /proc/cpuinfo || true
	echo "kernel: $(uname -r)"
	echo "broker: $BROKER${home:+ $(basename "$home"), $APACHE_BROKERS broker(s), data on $(df --output=fstype "$(dirname "$KAFKA_DIR")" | tail -1)}"
	echo "go: $(go version)"
	echo "kord: $(cd "$here" && git describe --always --dirty 2>/dev/null || echo unknown)"
	[ -n "${FABRIC_ORDERER:-}" ] && echo "fabric: $("$FABRIC_ORDERER" version 2>/dev/null | grep -m1 Version || echo unknown)"
} >machine.txt

# start_orderer KIND BIN CFGDIR PORT: the orderer's environment as an operator sets it.
start_orderer() {
	local kind=$1 bin=$2 cfg=$3 port=$4
	env -i PATH="$PATH" HOME="$HOME" \
		FABRIC_CFG_PATH="$cfg" FABRIC_LOGGING_SPEC=info \
		ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$port" \
		ORDERER_GENERAL_BOOTSTRAPMETHOD=file ORDERER_GENERAL_BOOTSTRAPFILE="$WORK/genesis.block" \
		ORDERER_GENERAL_LOCALMSPDIR="$orderer_msp" ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
		ORDERER_FILELEDGER_LOCATION="$WORK/$kind-ledger" \
		ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:$((port + 100)) ORDERER_METRICS_PROVIDER=prometheus \
		ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:$((port + 200)) \
		ORDERER_KAFKA_VERSION=1.0.0 ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR="$replication" \
		ORDERER_GENERAL_PROFILE_ENABLED=true ORDERER_GENERAL_PROFILE_ADDRESS=127.0.0.1:$((port + 300)) \
		"$bin" >"$kind.log" 2>&1 &
	pids+=($!)
	echo $!
}

# newest PORT: the number of the channel's newest block on the orderer, or nothing.
newest() {
	"$K" channel fetch newest -o "127.0.0.1:$1" -c bench --msp-dir "$user_msp" --msp-id Org1MSP \
		--timeout 5s 2>&1 >/dev/null | sed -n 's/^block \([0-9]*\) of bench.*/\1/p' || true
}

# cpu PID...: the processes' user+system CPU time so far, in clock ticks.
cpu() {
	local p t=0
	for p; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	echo "$t"
}

# written PID: bytes the process has caused to be written to disk so far (its ledger).
written() { awk '/^write_bytes:/ { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }

# kafka_pids: the broker's processes (Apache Kafka's JVMs are kafkacluster's children, each
# in its own process group, and their CPU time is not kafkacluster's).
kafka_pids() {
	if [ "$BROKER" = apache ]; then pgrep -f -- "$KAFKA_DIR/" || true; else echo "$kafka_pid"; fi
}

runs=0
bench() { # KIND PORT RUN ARGS...
	local kind=$1 port=$2 run=$3
	shift 3
	echo "== $kind $run: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	local line o0 k0 o1 k1 w0 w1 hz
	hz=$(getconf CLK_TCK)
	o0=$(cpu "$orderer_pid") k0=$(cpu $(kafka_pids)) w0=$(written "$orderer_pid")
	line=$("$K" bench -o "127.0.0.1:$port" -c "${BENCH_CHANNEL:-bench}" --msp-dir "$user_msp" --msp-id Org1MSP \
		--size "$SIZE" --progress off "$@")
	o1=$(cpu "$orderer_pid") k1=$(cpu $(kafka_pids)) w1=$(written "$orderer_pid")
	echo "$line" >&2
	# CPU seconds each process spent during the run (the client reports its own as
	# client_cpu_s): where the two shared cores went.
	local usage
	usage=$(awk -v o="$((o1 - o0))" -v k="$((k1 - k0))" -v w="$((w1 - w0))" -v hz="$hz" 'BEGIN { printf "\"orderer_cpu_s\":%.2f,\"kafka_cpu_s\":%.2f,\"orderer_disk_write_mb\":%.1f", o / hz, k / hz, w / 1048576 }')
	echo "cpu: $usage" >&2
	# The orderer's metrics after each run (cumulative), for its histograms (ledger commit
	# time, block fill time) next to the client's figures.
	runs=$((runs + 1))
	curl -s "http://127.0.0.1:$((port + 100))/metrics" >"metrics-$runs-$kind.txt" 2>/dev/null || true
	echo "{\"orderer_kind\":\"$kind\",\"run\":\"$run\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",$usage,${line#\{}" >>results.jsonl
	sleep 5 # let the machine settle between runs
}

measure() { # KIND PORT
	for s in $STREAMS; do
		bench "$1" "$2" "streams=$s" --streams "$s" --count "$COUNT"
	done
	[ -n "$RATE" ] || return 0
	local i
	for i in $(seq "$RATE_RUNS"); do
		bench "$1" "$2" "rate=$RATE" --streams 4 --rate "$RATE" --duration "$RATE_DURATION"
	done
	if [ -n "$SMALL_BATCH" ]; then
		batch "$2" "$SMALL_BATCH"
		for i in $(seq "$RATE_RUNS"); do
			bench "$1" "$2" "rate=$RATE,batch=$SMALL_BATCH" --streams 4 --rate "$RATE" --duration "$RATE_DURATION"
		done
		batch "$2" 500
	fi
}

batch() { # PORT MAXMESSAGECOUNT [CHANNEL]: a config update signed by the orderer organization's admin
	"$K" channel update -o "127.0.0.1:$1" -c "${3:-bench}" --batch-size "$2" \
		--msp-dir "$orderer_admin_msp" --msp-id OrdererMSP >>update.log 2>&1
	sleep 2
}

# soak PID PORT: a warm-up of SOAK_WARMUP (60s) and then a run of SOAK, both at SOAK_RATE on
# 16 streams, while PID's resident size is sampled every 10 s (from the start of the
# warm-up). An idle Go process has returned heap to the system; the warm-up lets the orderer
# reach the size it works at, so that the soak measures whether that size grows.
soak() {
	local pid=$1 port=$2 sampler start
	: >soak-rss.txt
	(
		while kill -0 "$pid" 2>/dev/null; do
			echo "$(date +%s) $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")" >>soak-rss.txt
			sleep 10
		done
	) &
	sampler=$!
	# Signed on the fly: load starts at once (no minutes of preparation before the first
	# sample) and the client holds only the envelopes in flight.
	bench kord "$port" "soak warm-up=${SOAK_WARMUP:-60s},rate=${SOAK_RATE:-10000}" --streams 16 --rate "${SOAK_RATE:-10000}" --duration "${SOAK_WARMUP:-60s}" --sign-on-the-fly
	start=$(date +%s)
	bench kord "$port" "soak=${SOAK},rate=${SOAK_RATE:-10000}" --streams 16 --rate "${SOAK_RATE:-10000}" --duration "$SOAK" --sign-on-the-fly
	kill "$sampler" 2>/dev/null || true
	# Resident size (KiB) over the first and the last minute of the soak (six samples each,
	# the warm-up left out), and the peak.
	awk -v start="$start" '$1 >= start { n++; v[n] = $2; if ($2 > peak) peak = $2 }
		END { if (n < 12) { print "soak: too few RSS samples (" n ")"; exit }
			for (i = 1; i <= 6; i++) { a += v[i]; b += v[n - 6 + i] }
			printf "soak: orderer RSS first minute %.0f MiB, last minute %.0f MiB (%+.1f%%), peak %.0f MiB, %d samples after the warm-up\n", a/6/1024, b/6/1024, (b - a) / a * 100, peak/1024, n }' soak-rss.txt | tee -a soak-summary.txt >&2
}

# followers PID PORT BIN CFGDIR: the orderer's memory while it delivers a chain of FOLLOW_BLOCKS blocks
# from block 0 to one follower, then to FOLLOWERS followers at once (each a `kordctl fetch`
# process writing to /dev/null). The chain is channel "deliver", filled first with
# FOLLOW_BLOCKS·10 envelopes at MaxMessageCount 10. The resident size (VmRSS) is sampled
# every 50 ms; the peaks and the idle size before each run are printed and recorded. The
# orderer is restarted on its ledger before the followers come.
followers() { # PID PORT BIN CFGDIR
	local pid=$1 port=$2 bin=$3 cfg=$4 n=${FOLLOWERS:-10} blocks=${FOLLOW_BLOCKS:-10000}
	for _ in $(seq 30); do
		"$K" channel create -o "127.0.0.1:$port" -c deliver -f deliver.tx --out deliver.block \
			--msp-dir "$admin_msp" --msp-id Org1MSP --timeout 10s 2>>create.log && break
		sleep 1
	done
	batch "$port" 10 deliver
	BENCH_CHANNEL=deliver bench kord "$port" "fill deliver" --streams 16 --count $((blocks * 10))
	local last
	last=$("$K" channel fetch newest -o "127.0.0.1:$port" -c deliver --msp-dir "$user_msp" --msp-id Org1MSP \
		--timeout 5s 2>&1 >/dev/null | sed -n 's/^block \([0-9]*\) of deliver.*/\1/p')
	running() { # PID...: one of them has not exited (a zombie has)
		local p state
		for p; do
			state=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)
			[ -n "$state" ] && [ "$state" != Z ] && return 0
		done
		return 1
	}
	one_run() { # COUNT: peak VmRSS (KiB) while COUNT followers read blocks 0..last
		local count=$1 peak=0 v fpids=()
		for _ in $(seq "$count"); do
			"$K" fetch --orderer "127.0.0.1:$port" --channel deliver --start oldest --stop "$last" --out - \
				--msp-dir "$user_msp" --msp-id Org1MSP >/dev/null 2>>fetch.log &
			fpids+=($!)
		done
		local t0=$SECONDS
		while running "${fpids[@]}"; do
			v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
			[ "$v" -gt "$peak" ] && peak=$v
			sleep 0.05
		done
		wait "${fpids[@]}" || { echo "a follower failed (fetch.log)" >&2; exit 1; }
		echo "$peak $((SECONDS - t0))"
	}
	# A fresh process on the same ledger, so that what the fill left on the heap does not
	# hide what delivering costs.
	kill "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done # not our child: no wait
	mv kord.log kord-before-followers.log
	pid=$(start_orderer kord "$bin" "$cfg" "$port")
	orderer_pid=$pid
	for _ in $(seq 60); do [ "$(newest "$port")" = "$last" ] && break; sleep 1; done
	sleep 5
	local idle1 r1 idle10 r10
	idle1=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
	r1=$(one_run 1)
	sleep 5
	idle10=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
	r10=$(one_run "$n")
	awk -v b="$((last + 1))" -v n="$n" -v i1="$idle1" -v i10="$idle10" -v r1="$r1" -v r10="$r10" 'BEGIN {
		split(r1, a, " "); split(r10, c, " ")
		printf "followers: %d blocks; 1 follower: peak RSS %.0f MiB (idle before %.0f MiB, %ds); %d followers: peak %.0f MiB (idle before %.0f MiB, %ds); ratio of peaks %.2f\n",
			b, a[1]/1024, i1/1024, a[2], n, c[1]/1024, i10/1024, c[2], c[1]/a[1] }' | tee -a followers-summary.txt >&2
}

first=1
height=""
run_one() { # KIND BIN CFGDIR PORT
	local kind=$1 bin=$2 cfg=$3 port=$4 pid
	pid=$(start_orderer "$kind" "$bin" "$cfg" "$port")
	orderer_pid=$pid
	if [ $first = 1 ]; then
		for _ in $(seq 60); do
			"$K" channel create -o "127.0.0.1:$port" -c bench -f bench.tx --out bench.block \
				--msp-dir "$admin_msp" --msp-id Org1MSP --timeout 10s 2>>create.log && break
			sleep 1
		done
		first=0
	else
		# Caught up with the chain the first orderer wrote?
		for _ in $(seq 300); do [ "$(newest "$port")" = "$height" ] && break; sleep 1; done
		[ "$(newest "$port")" = "$height" ] || { echo "$kind did not catch up to block $height" >&2; exit 1; }
	fi
	sleep 5
	measure "$kind" "$port"
	if [ "$kind" = kord ] && [ -n "${SOAK:-}" ]; then
		soak "$pid" "$port"
	fi
	if [ "$kind" = kord ] && [ -n "${FOLLOWERS:-}" ]; then
		followers "$pid" "$port" "$bin" "$cfg"
	fi
	height=$(newest "$port")
	kill "$orderer_pid"
	wait "$orderer_pid" 2>/dev/null || true
}

if [ -n "${FABRIC_ORDERER:-}" ]; then
	run_one fabric "$FABRIC_ORDERER" "$FABRIC_CFG" "$fabric_port"
fi
run_one kord "$WORK/bin/orderer" "$here/config" "$kord_port"

cat machine.txt >&2
echo "results: $WORK/results.jsonl" >&2
