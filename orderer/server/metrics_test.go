package server

import (
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/client"
)

// How each exported metric is expected to move during a Broadcast/Deliver run followed by a
// Kafka outage and recovery.
type expect int

const (
	grows   expect = iota // counter or histogram: more samples after the run than before
	nonZero               // gauge: some series is not zero
	present               // gauge that may legitimately be zero (lag once caught up)
)

// listedMetrics are the metrics the README lists, with what the test requires of each.
var listedMetrics = map[string]expect{
	// Fabric's
	"broadcast_validate_duration":           grows,
	"broadcast_enqueue_duration":            grows,
	"broadcast_processed_count":             grows,
	"deliver_streams_opened":                grows,
	"deliver_streams_closed":                grows,
	"deliver_requests_received":             grows,
	"deliver_requests_completed":            grows,
	"deliver_blocks_sent":                   grows,
	"ledger_blockchain_height":              grows,
	"ledger_blockstorage_commit_time":       grows,
	"blockcutter_block_fill_duration":       grows,
	"consensus_kafka_last_offset_persisted": grows,
	"consensus_kafka_incoming_byte_rate":    nonZero,
	"consensus_kafka_outgoing_byte_rate":    nonZero,
	"consensus_kafka_request_rate":          nonZero,
	"consensus_kafka_request_size":          nonZero,
	"consensus_kafka_request_latency":       present, // mean in whole ms: 0 on loopback
	"consensus_kafka_response_rate":         nonZero,
	"consensus_kafka_response_size":         nonZero,
	"consensus_kafka_batch_size":            nonZero,
	"consensus_kafka_record_send_rate":      nonZero,
	"consensus_kafka_records_per_request":   nonZero,
	"consensus_kafka_compression_ratio":     nonZero,
	"grpc_server_stream_requests_received":  grows,
	"grpc_server_stream_requests_completed": grows,
	"grpc_server_stream_request_duration":   grows,
	"grpc_server_stream_messages_received":  grows,
	"grpc_server_stream_messages_sent":      grows,
	"grpc_comm_conn_opened":                 grows,
	"grpc_comm_conn_closed":                 grows,
	"logging_entries_checked":               grows,
	"logging_entries_written":               grows,
	"fabric_version":                        nonZero,
	// kord's
	"kord_chain_consumer_lag":             present,
	"kord_chain_seconds_since_last_block": present,
	"kord_chain_connected":                nonZero,
	"kord_chain_records_noted_total":      grows,
	"kord_kafka_reconnects_total":         grows,
}

// TestMetricsAndHealthz runs Broadcast and Deliver against an orderer on kfake, scraping
// /metrics before and after, then takes Kafka away and brings it back: every metric listed in
// the README moves, and /healthz goes 200 → 503 (naming the channels and why) → 200.
func TestMetricsAndHealthz(t *testing.T) {
	n := newTestNet(t, embedded.Config{}, nil)
	n.start()
	ctx := testCtx(t, 3*time.Minute)
	n.createChannel(ctx, testChannel)
	hc := &http.Client{Timeout: 5 * time.Second}
	before := scrape(t, hc, n.opsURL("/metrics"))

	conn := n.dial(nil)
	for range 3 {
		if acked, err := broadcastN(ctx, conn, n.user, testChannel, 12); err != nil || acked != 12 {
			t.Fatalf("broadcast: %d acked, %v", acked, err)
		}
	}
	// 36 envelopes, 5 per block: at least 7 blocks after block 0. On a connection of its own,
	// closed afterwards (grpc_comm_conn_closed).
	dconn, err := client.Dial(ctx, n.srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if blocks, err := deliverUpTo(ctx, dconn, n.user, testChannel, 7); err != nil || blocks != 8 {
		t.Fatalf("deliver: %d blocks, %v", blocks, err)
	}
	dconn.Close()

	// /healthz: 503 while Kafka is away, naming every channel and the reason; 200 again after.
	n.cluster.Close()
	hs := n.waitHealthz(ctx, http.StatusServiceUnavailable)
	for len(hs.FailedChecks) < 2 && ctx.Err() == nil { // the chains notice one after the other
		time.Sleep(50 * time.Millisecond)
		_, hs = n.healthz()
	}
	if hs.Status != "Service Unavailable" || len(hs.FailedChecks) != 2 || hs.Time.IsZero() {
		t.Errorf("/healthz while Kafka is down: %+v", hs)
	}
	for _, fc := range hs.FailedChecks {
		if !strings.HasPrefix(fc.Component, "kafka/") || fc.Reason == "" {
			t.Errorf("failed check %+v", fc)
		}
	}
	t.Logf("/healthz while Kafka is down: %+v", hs.FailedChecks)
	n.restartKafka()
	defer n.cluster.Close()
	n.waitHealthz(ctx, http.StatusOK)
	if acked, err := broadcastN(ctx, conn, n.user, testChannel, 5); err != nil || acked != 5 {
		t.Fatalf("broadcast after Kafka came back: %d acked, %v", acked, err)
	}

	// Rates and means of sarama's meters need its 5-second tick; poll until everything moved.
	var after map[string]float64
	var missing []string
	deadline := time.Now().Add(45 * time.Second)
	for {
		after = scrape(t, hc, n.opsURL("/metrics"))
		missing = missing[:0]
		for name, want := range listedMetrics {
			b, _ := family(before, name)
			a, found := family(after, name)
			switch {
			case !found:
				missing = append(missing, name+" (absent)")
			case want == grows && a <= b:
				missing = append(missing, name+" (did not grow)")
			case want == nonZero && !anyNonZero(after, name):
				missing = append(missing, name+" (zero)")
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		// Keep traffic flowing while sarama's meters tick.
		_, _ = broadcastN(ctx, conn, n.user, testChannel, 1)
		time.Sleep(time.Second)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics that did not move: %s", strings.Join(missing, ", "))
	}
	if v := after[`kord_kafka_reconnects_total{channel="mychannel"}`]; v < 1 {
		t.Errorf("reconnects of mychannel = %v, want ≥ 1", v)
	}
	if v := after[`deliver_requests_completed{channel="mychannel",data_type="block",filtered="false",success="true"}`]; v < 1 {
		t.Errorf("completed deliver requests with Fabric's labels = %v", v)
	}
	if v := after[`broadcast_processed_count{channel="mychannel",status="SUCCESS",type="ENDORSER_TRANSACTION"}`]; v < 41 {
		t.Errorf("broadcast_processed_count SUCCESS = %v, want ≥ 41", v)
	}
	if v := after[`grpc_server_stream_requests_completed{code="OK",method="Broadcast",service="orderer_AtomicBroadcast"}`]; v < 4 {
		t.Errorf("grpc Broadcast streams completed = %v", v)
	}
}

func anyNonZero(series map[string]float64, name string) bool {
	for k, v := range series {
		if (k == name || strings.HasPrefix(k, name+"{")) && v != 0 {
			return true
		}
	}
	return false
}

// TestREADMEListsEveryMetric keeps the README's metric table and the exported metrics the
// same set.
func TestREADMEListsEveryMetric(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(raw)
	i := strings.Index(section, "### Metrics")
	if i < 0 {
		t.Fatal("README has no Metrics section")
	}
	section = section[i:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)`")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	for name := range listedMetrics {
		if !documented[name] {
			t.Errorf("README does not list %s", name)
		}
	}
	for name := range documented {
		if _, ok := listedMetrics[name]; !ok {
			t.Errorf("README lists %s, which the tests do not check", name)
		}
	}
	// And the registry exports nothing else (besides the Go and process collectors).
	m := newMetrics("test")
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if _, ok := listedMetrics[name]; !ok {
			t.Errorf("exported metric %s is not listed", name)
		}
	}
}
