#!/usr/bin/env bash
# Installs Apache Kafka (broker, KRaft, ZooKeeper, a log4j binding) for the test suite that runs
# kord against real brokers (`make test-kafka`). It fetches org.apache.kafka:kafka_2.13 and its
# runtime dependencies from Maven Central with Maven (pom.xml beside this script) into a
# directory this script owns, by default <repo>/.cache/apache-kafka, and prints the installed
# home (libs/*.jar, config/log4j.properties) as its only line on stdout. A second run with the
# same pom.xml does nothing. Transient download failures are retried; if Kafka still cannot be
# installed, the script fails with a message and a non-zero status - it never skips.
#
#   integration/apache-kafka/install.sh           # install (or reuse) and print the home
#   KORD_APACHE_KAFKA_CACHE=/some/dir install.sh  # another cache directory
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${KORD_APACHE_KAFKA_CACHE:-$root/.cache/apache-kafka}
attempts=${KORD_APACHE_KAFKA_ATTEMPTS:-4}

fail() {
	echo "apache-kafka/install.sh: $*" >&2
	echo "apache-kafka/install.sh: Apache Kafka is NOT installed; the Apache Kafka suite cannot run." >&2
	exit 1
}

command -v java >/dev/null 2>&1 || fail "no 'java' on PATH: a JDK (11 or later) is needed to run the brokers"
command -v mvn >/dev/null 2>&1 || fail "no 'mvn' on PATH: Maven is needed to fetch Kafka from Maven Central"

version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
[ -n "$version" ] || fail "cannot read kafka.version from $here/pom.xml"
stamp=$(cat "$here/pom.xml" "$here/log4j.properties" | sha256sum | cut -d' ' -f1)
home=$cache/kafka-$version

if [ -f "$home/.installed" ] && [ "$(cat "$home/.installed")" = "$stamp" ]; then
	echo "$home"
	exit 0
fi

mkdir -p "$cache"
log=$cache/install.log
: >"$log"
rm -rf "$home.tmp"
ok=
for i in $(seq 1 "$attempts"); do
	echo "apache-kafka/install.sh: fetching Apache Kafka $version from Maven Central (attempt $i of $attempts)" >&2
	if mvn -B -ntp -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2" \
		org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$home.tmp/libs" >>"$log" 2>&1; then
		ok=1
		break
	fi
	rm -rf "$home.tmp"
	if [ "$i" -lt "$attempts" ]; then
		sleep $((5 * i))
	fi
done
if [ -z "$ok" ]; then
	tail -n 30 "$log" >&2 || true
	fail "Maven could not fetch org.apache.kafka:kafka_2.13:$version after $attempts attempts (full log: $log)"
fi

for jar in "kafka_2.13-$version.jar" "kafka-raft-$version.jar" "kafka-metadata-$version.jar" "kafka-clients-$version.jar"; do
	[ -f "$home.tmp/libs/$jar" ] || fail "the download lacks $jar (see $log)"
done
ls "$home.tmp/libs"/zookeeper-3.*.jar >/dev/null 2>&1 || fail "the download lacks ZooKeeper (see $log)"
ls "$home.tmp/libs"/slf4j-reload4j-*.jar >/dev/null 2>&1 || fail "the download lacks the log4j binding (see $log)"
mkdir -p "$home.tmp/config"
cp "$here/log4j.properties" "$home.tmp/config/log4j.properties"

# The class path must start a JVM and name the expected version.
got=$(java -cp "$home.tmp/libs/*" kafka.Kafka --version 2>>"$log" | head -n 1 || true)
case "$got" in
"$version"*) ;;
*) fail "kafka.Kafka --version printed '$got', want $version (see $log)" ;;
esac

echo "$stamp" >"$home.tmp/.installed"
rm -rf "$home"
mv "$home.tmp" "$home"
echo "apache-kafka/install.sh: Apache Kafka $version installed in $home" >&2
echo "$home"
