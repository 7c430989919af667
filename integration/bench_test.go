package integration

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/loadgen"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// TestBench runs a short bounded load against an orderer process: every acknowledged
// envelope must be delivered exactly once, and `kordctl bench` must print a JSON line with
// the fields of issue 6.
func TestBench(t *testing.T) {
	nw := newNetwork(t, 1)
	nw.startAll()
	nw.createChannel(appChannel)
	o := nw.orderers[0]

	var mu sync.Mutex
	acked := map[string]bool{}
	delivered := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := loadgen.Run(ctx, loadgen.Config{
		Dial:    func(ctx context.Context) (*grpc.ClientConn, error) { return client.Dial(ctx, o.addr(), nil) },
		Signer:  nw.user,
		Channel: appChannel,
		Streams: 2,
		Count:   2000,
		Size:    1024,
		Deliver: true,
		OnAck: func(id string, st cb.Status) {
			mu.Lock()
			defer mu.Unlock()
			if st == cb.Status_SUCCESS {
				acked[id] = true
			}
		},
		OnDelivered: func(id string, _ uint64) {
			mu.Lock()
			defer mu.Unlock()
			delivered[id]++
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %+v", rep)
	if rep.Sent != 2000 || rep.Acknowledged != 2000 || len(rep.Refused) != 0 || len(rep.Errors) != 0 {
		t.Fatalf("sent %d, acknowledged %d, refused %v, errors %v", rep.Sent, rep.Acknowledged, rep.Refused, rep.Errors)
	}
	mu.Lock()
	if len(acked) != 2000 {
		t.Errorf("%d distinct acknowledged tx IDs", len(acked))
	}
	for id := range acked {
		if delivered[id] != 1 {
			t.Errorf("tx %s delivered %d times", id, delivered[id])
		}
	}
	if len(delivered) != len(acked) {
		t.Errorf("%d tx IDs delivered, %d acknowledged", len(delivered), len(acked))
	}
	mu.Unlock()
	if rep.Delivered != 2000 || rep.Foreign != 0 || rep.Undelivered != 0 {
		t.Fatalf("delivered %d, foreign %d, undelivered %d", rep.Delivered, rep.Foreign, rep.Undelivered)
	}
	// MaxMessageCount 10: full blocks except where the batch timeout cut one.
	if rep.Blocks < 200 || rep.EnvelopesPerBlock > maxMessageCount {
		t.Fatalf("%d blocks of %v envelopes", rep.Blocks, rep.EnvelopesPerBlock)
	}
	if rep.Latency.P50 <= 0 || rep.Latency.P99 < rep.Latency.P50 || rep.AckLatency.P50 <= 0 {
		t.Fatalf("latencies %+v / %+v", rep.Latency, rep.AckLatency)
	}

	// The command line: a paced run signed on the fly, bounded by count.
	org := nw.spec.PeerOrgs[0]
	userMSP := mspgen.UserMSPDir(mspgen.PeerOrgDir(nw.cryptoDir, org.Domain), org.Domain, "User1")
	out, err := runKordctl(t, "bench", "-o", o.addr(), "-c", appChannel, "--msp-dir", userMSP, "--msp-id", org.MSPID,
		"--streams", "2", "--count", "300", "--rate", "1000", "--sign-on-the-fly", "--progress", "off")
	if err != nil {
		t.Fatalf("kordctl bench: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last line of kordctl bench is not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"sent", "acknowledged", "refused", "delivered", "elapsed_s", "acknowledged_per_s", "delivered_per_s", "latency_ms", "ack_latency_ms", "blocks", "envelopes_per_block"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON line lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	if m["sent"] != 300.0 || m["acknowledged"] != 300.0 || m["delivered"] != 300.0 {
		t.Errorf("kordctl bench: %s", lines[len(lines)-1])
	}
	// 300 envelopes at 1000/s take 0.3s to send.
	if el, _ := m["send_elapsed_s"].(float64); el < 0.29 {
		t.Errorf("paced sending took %vs", el)
	}
	lat, _ := m["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p95", "p99"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
}
