package integration

import (
	"context"
	"net/http"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/client"
)

// TestKafkaDownDeliverServesLedger takes Kafka away from a running orderer: Deliver keeps
// serving every block already written (Fabric refuses them), Broadcast answers
// SERVICE_UNAVAILABLE within a bounded time instead of hanging, /healthz turns 503, and the
// process keeps running.
func TestKafkaDownDeliverServesLedger(t *testing.T) {
	nw := newNetwork(t, 1)
	nw.startAll()
	nw.createChannel(appChannel)
	o := nw.orderers[0]
	conn := o.dial()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	res := broadcastStream(ctx, conn, nw.user, appChannel, 25, payloads(7, 0), nil)
	if len(res.acked) != 25 {
		t.Fatalf("load before the outage: %v", res)
	}
	acked := map[string]string{}
	ackedSet(t, acked, []streamResult{res})
	before, err := deliverUntil(ctx, conn, nw.user, appChannel, acked)
	if err != nil {
		t.Fatalf("delivering before the outage: %v", err)
	}

	nw.cluster.Close()

	// /healthz reports the outage.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + o.opsAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz did not turn 503 within 60s of Kafka going away")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Every stored block is still served, and the request ends with SUCCESS.
	status, got, err := deliverRange(ctx, conn, nw.user, appChannel, client.Oldest(), client.Specified(uint64(len(before)-1)), ab.SeekInfo_BLOCK_UNTIL_READY)
	if err != nil || status != cb.Status_SUCCESS || len(got) != len(before) {
		t.Fatalf("deliver while Kafka is down: status %s, %d of %d blocks, err %v", status, len(got), len(before), err)
	}
	for i := range got {
		if !blockEqual(got[i], before[i]) {
			t.Fatalf("block %d differs while Kafka is down", i)
		}
	}

	// Broadcast is refused with SERVICE_UNAVAILABLE, quickly.
	began := time.Now()
	bctx, bcancel := context.WithTimeout(ctx, 45*time.Second)
	defer bcancel()
	r := broadcastStream(bctx, conn, nw.user, appChannel, 1, payloads(8, 0), nil)
	if r.status != cb.Status_SERVICE_UNAVAILABLE || r.info == "" {
		t.Fatalf("broadcast while Kafka is down: %v", r)
	}
	t.Logf("broadcast refused after %v: %s", time.Since(began).Round(time.Millisecond), r.info)
	if !o.running() {
		t.Fatal("orderer exited when Kafka went away")
	}
}
