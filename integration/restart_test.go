package integration

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kordhq/kord/orderer/genesis"
)

// connectedRE matches the chain's log line for a session start, which names the offset it
// consumes from and the height it rebuilt from the ledger.
var connectedRE = regexp.MustCompile(`chain connected to Kafka"? channel=` + appChannel + ` start_offset=(-?\d+) height=(\d+)`)

// TestKillAndRestartUnderLoad kills one of three orderers with SIGKILL while all three take
// Broadcast load, keeps loading the other two, restarts it on the same ledger and ports, and
// checks that all three end with the same chain holding every acknowledged transaction once.
func TestKillAndRestartUnderLoad(t *testing.T) {
	began := time.Now()
	nw := newNetwork(t, 3)
	nw.startAll()
	nw.createChannel(appChannel)
	victim := nw.orderers[1]
	survivors := []*orderer{nw.orderers[0], nw.orderers[2]}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	acked := map[string]string{}

	// Phase 1: load on all three; kill orderer1 once it acknowledged a good part of its share.
	const streams1, perStream1 = 2, 250
	var victimAcks atomic.Int64
	var (
		wg       sync.WaitGroup
		results1 []streamResult
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		results1 = runLoad(ctx, t, nw.user, loadSpec{
			targets: nw.orderers, streams: streams1, perStream: perStream1, bigEvery: 75, seed: 2,
			pace: 2 * time.Millisecond, // so that the load lasts a while: the kill must come mid-load
			onAck: func(o *orderer) {
				if o == victim {
					victimAcks.Add(1)
				}
			},
		})
	}()
	// Kill once orderer1 acknowledged a part of its share and has written a few blocks (so that
	// resuming from its ledger means something).
	const minHeight = 5
	var hBefore uint64
	conn := victim.dial()
	for {
		if ctx.Err() != nil {
			t.Fatalf("orderer1 acknowledged only %d envelopes and has height %d", victimAcks.Load(), hBefore)
		}
		if victimAcks.Load() >= streams1*perStream1/5 {
			h, err := height(ctx, conn, nw.user, appChannel)
			if err != nil {
				t.Fatalf("height of %s before the kill: %v", victim.name, err)
			}
			if hBefore = h; h >= minHeight {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn.Close()
	victim.kill()
	killedAt := victimAcks.Load()
	wg.Wait()
	t.Logf("killed %s after %d of its acknowledgements (height >= %d)", victim.name, killedAt, hBefore)

	victimAcked := 0
	for _, r := range results1 {
		if r.orderer == victim.name {
			victimAcked += len(r.acked)
			if r.err == nil && r.status == 0 && len(r.acked) == perStream1 {
				t.Logf("note: a stream to %s completed before the kill: %v", victim.name, r)
			}
			continue
		}
		if r.err != nil || r.status != 0 || len(r.acked) != perStream1 {
			t.Errorf("broadcast to a surviving orderer failed: %v", r)
		}
	}
	if victimAcked >= streams1*perStream1 {
		t.Fatalf("the kill came after all of %s's load was acknowledged; the test did not kill mid-load", victim.name)
	}
	ackedSet(t, acked, results1)

	// Phase 2: more load on the survivors while orderer1 is down.
	const streams2, perStream2 = 2, 100
	results2 := runLoad(ctx, t, nw.user, loadSpec{targets: survivors, streams: streams2, perStream: perStream2, bigEvery: 75, seed: 3})
	requireAllAcked(t, results2, perStream2)
	ackedSet(t, acked, results2)

	// Restart orderer1 on the same ledger directory and ports.
	victim.start()
	conn = victim.dial()
	var hAfter uint64
	var err error
	deadline := time.Now().Add(readyTimeout)
	for {
		// Deliver serves the ledger as soon as gRPC listens, before the chains connect.
		if hAfter, err = height(ctx, conn, nw.user, appChannel); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	conn.Close()
	if err != nil {
		t.Fatalf("height of %s after the restart: %v", victim.name, err)
	}
	if hAfter < hBefore {
		t.Errorf("%s restarted with height %d, below its height %d before the kill: it did not resume from its ledger", victim.name, hAfter, hBefore)
	}
	victim.waitReady()
	if strings.Contains(victim.logSinceStart(), "bootstrapped system channel from genesis block") {
		t.Errorf("%s bootstrapped again from the genesis block instead of opening its ledger", victim.name)
	}
	// The chain reports itself connected just before it logs so: poll the log for a moment.
	var m []string
	for wait := time.Now().Add(5 * time.Second); m == nil && time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		m = connectedRE.FindStringSubmatch(victim.logSinceStart())
	}
	if m == nil {
		t.Errorf("%s's log after the restart has no 'chain connected to Kafka' line for %s", victim.name, appChannel)
	} else {
		off, _ := strconv.ParseInt(m[1], 10, 64)
		h, _ := strconv.ParseUint(m[2], 10, 64)
		if off <= 1 || h < hBefore {
			t.Errorf("%s's chain resumed at offset %d with height %d; want an offset past the start and height >= %d", victim.name, off, h, hBefore)
		}
		t.Logf("%s resumed: height %d before the kill, %d at restart, consuming from offset %d", victim.name, hBefore, h, off)
	}

	// Phase 3: load on all three, orderer1 included.
	const streams3, perStream3 = 1, 100
	results3 := runLoad(ctx, t, nw.user, loadSpec{targets: nw.orderers, streams: streams3, perStream: perStream3, bigEvery: 75, seed: 4})
	requireAllAcked(t, results3, perStream3)
	ackedSet(t, acked, results3)
	t.Logf("%d envelopes acknowledged in all", len(acked))

	chains := nw.collectChains(appChannel, acked, 60*time.Second)
	nw.verifyChains(appChannel, chains)
	for i, ch := range chains {
		n, _ := verifyTxs(t, ch, acked)
		t.Logf("%s: %d blocks, %d transactions (%d acknowledged)", nw.orderers[i].name, len(ch), n, len(acked))
	}
	nw.verifyChains(genesis.DefaultSystemChannelID, nw.collectAll(genesis.DefaultSystemChannelID))
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// TestRestartResumesDevLikeSetup stops every orderer gracefully, restarts them all on their
// ledgers, and checks that the chains continue without gap.
func TestRestartResumesDevLikeSetup(t *testing.T) {
	began := time.Now()
	nw := newNetwork(t, 3)
	nw.startAll()
	nw.createChannel(appChannel)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	acked := map[string]string{}
	const streams, perStream = 1, 150
	results := runLoad(ctx, t, nw.user, loadSpec{targets: nw.orderers, streams: streams, perStream: perStream, bigEvery: 60, seed: 5})
	requireAllAcked(t, results, perStream)
	ackedSet(t, acked, results)
	before := nw.collectChains(appChannel, acked, 60*time.Second)
	// Let the last batch timeout pass so that nothing is pending when the orderers stop.
	time.Sleep(2 * batchTimeout)

	heights := make([]uint64, len(nw.orderers))
	for i, o := range nw.orderers {
		conn := o.dial()
		h, err := height(ctx, conn, nw.user, appChannel)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		heights[i] = h
		o.stop() // SIGTERM; requires exit status 0
	}
	for _, o := range nw.orderers {
		o.start()
	}
	for i, o := range nw.orderers {
		o.waitReady()
		if strings.Contains(o.logSinceStart(), "bootstrapped system channel from genesis block") {
			t.Errorf("%s bootstrapped again from the genesis block instead of opening its ledger", o.name)
		}
		conn := o.dial()
		h, err := height(ctx, conn, nw.user, appChannel)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		if h < heights[i] {
			t.Errorf("%s: height %d after the restart, %d before", o.name, h, heights[i])
		}
	}

	results = runLoad(ctx, t, nw.user, loadSpec{targets: nw.orderers, streams: streams, perStream: perStream, bigEvery: 60, seed: 6})
	requireAllAcked(t, results, perStream)
	ackedSet(t, acked, results)

	chains := nw.collectChains(appChannel, acked, 60*time.Second)
	nw.verifyChains(appChannel, chains)
	for i, ch := range chains {
		if len(ch) <= len(before[i]) {
			t.Errorf("%s: no block written after the restart", nw.orderers[i].name)
		}
		// The chain after the restart extends the one before, block for block.
		for n, b := range before[i] {
			if n < len(ch) && !blockEqual(b, ch[n]) {
				t.Errorf("%s: block %d changed across the restart", nw.orderers[i].name, n)
			}
		}
		n, _ := verifyTxs(t, ch, acked)
		if n != len(acked) {
			t.Errorf("%s: chain holds %d transactions, %d acknowledged", nw.orderers[i].name, n, len(acked))
		}
	}
	nw.verifyChains(genesis.DefaultSystemChannelID, nw.collectAll(genesis.DefaultSystemChannelID))
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}
