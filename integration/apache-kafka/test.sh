#!/usr/bin/env bash
# `make test-kafka`: installs Apache Kafka (install.sh; fails, never skips, if it cannot) and runs
# the suites built with the apachekafka tag: the cluster launcher's own test, then kord's
# orderer processes on real clusters (baseline and faults). The full output goes to
# .cache/test-kafka.log; the terminal gets test names, results and the FAULT-TIMING lines,
# which are listed again at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
timeout=${KAFKA_TEST_TIMEOUT:-25m}
log=.cache/test-kafka.log
mkdir -p .cache
integration/apache-kafka/install.sh >/dev/null

began=$(date +%s)
set +e
{
	"$GO" test -tags apachekafka -count=1 -v -timeout 5m ./integration/apachekafka/ -run '^TestCluster' &&
		"$GO" test -tags apachekafka -count=1 -v -timeout "$timeout" ./integration/ -run '^TestApache'
} 2>&1 | tee "$log" |
	grep --line-buffered -E '^(=== RUN|--- |    --- |ok|FAIL|PASS)|FAULT-TIMING|apache_test.go|apache_helpers_test.go|harness_test.go'
status=${PIPESTATUS[0]}
set -e
echo "---- fault timings (full log: $log) ----"
grep -o 'FAULT-TIMING.*' "$log" || true
echo "Apache Kafka suite: $(($(date +%s) - began))s, exit status $status"
exit "$status"
