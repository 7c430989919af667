package integration

import (
	"context"
	"testing"
	"time"

	"github.com/kordhq/kord/orderer/genesis"
)

// TestThreeOrderersConsistent broadcasts to three orderers at once and checks that they all
// write the same chain, holding every acknowledged transaction exactly once.
func TestThreeOrderersConsistent(t *testing.T) {
	began := time.Now()
	nw := newNetwork(t, 3)
	nw.startAll()
	nw.createChannel(appChannel)
	t.Logf("network up in %v", time.Since(began).Round(time.Millisecond))

	const streams, perStream = 2, 150
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	loadStart := time.Now()
	results := runLoad(ctx, t, nw.user, loadSpec{
		targets: nw.orderers, streams: streams, perStream: perStream, bigEvery: 50, seed: 1,
	})
	requireAllAcked(t, results, perStream)
	acked := map[string]string{}
	ackedSet(t, acked, results)
	t.Logf("%d envelopes acknowledged in %v", len(acked), time.Since(loadStart).Round(time.Millisecond))

	deliverStart := time.Now()
	chains := nw.collectChains(appChannel, acked, 60*time.Second)
	t.Logf("%d blocks delivered by each orderer in %v", len(chains[0]), time.Since(deliverStart).Round(time.Millisecond))
	nw.verifyChains(appChannel, chains)
	for i, ch := range chains {
		n, oversized := verifyTxs(t, ch, acked)
		if n != len(acked) {
			t.Errorf("%s: chain holds %d transactions, %d were sent and acknowledged", nw.orderers[i].name, n, len(acked))
		}
		if want := len(nw.orderers) * streams * (perStream / 50); oversized != want {
			t.Errorf("%s: %d blocks with an oversized envelope, want %d", nw.orderers[i].name, oversized, want)
		}
	}

	sys := nw.collectAll(genesis.DefaultSystemChannelID)
	if len(sys[0]) != 2 {
		t.Errorf("system channel has %d blocks, want 2 (genesis and the creation of %s)", len(sys[0]), appChannel)
	}
	nw.verifyChains(genesis.DefaultSystemChannelID, sys)
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}
