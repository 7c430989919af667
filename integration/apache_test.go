//go:build apachekafka

package integration

import (
	"context"
	"testing"
	"time"

	"github.com/kordhq/kord/integration/apachekafka"
	"github.com/kordhq/kord/orderer/genesis"
)

const otherChannel = "otherchannel"

// TestApacheBaseline: three orderers on a 3-broker Apache Kafka cluster (KRaft, and once in
// the suite ZooKeeper mode like the tutorials), concurrent Broadcast to all three on two
// channels; every acknowledged envelope is in the chain exactly once, and the three chains of
// every channel are identical (checked by the harness and by `kordctl verify`).
func TestApacheBaseline(t *testing.T) {
	for _, mode := range []apachekafka.Mode{apachekafka.KRaft, apachekafka.ZooKeeper} {
		t.Run(mode.String(), func(t *testing.T) {
			began := time.Now()
			c := startKafka(t, apachekafka.Config{Mode: mode})
			nw := newApacheNetwork(t, c, 3, netConfig{})
			nw.startAll()
			nw.createChannel(appChannel)
			nw.createChannel(otherChannel)
			t.Logf("network up in %v", time.Since(began).Round(time.Millisecond))

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			const streams, perStream = 2, 100
			loadStart := time.Now()
			results := make([][]streamResult, 2)
			done := make(chan int, 2)
			for i, ch := range []string{appChannel, otherChannel} {
				go func() {
					results[i] = runLoad(ctx, t, nw.user, loadSpec{
						channel: ch, targets: nw.orderers, streams: streams, perStream: perStream, bigEvery: 40, seed: uint64(10 + i),
					})
					done <- i
				}()
			}
			<-done
			<-done
			for i, ch := range []string{appChannel, otherChannel} {
				requireAllAcked(t, results[i], perStream)
				acked := map[string]string{}
				ackedSet(t, acked, results[i])
				t.Logf("%s: %d envelopes acknowledged", ch, len(acked))
				nw.settle(ch, acked)
			}
			faultTiming(t, "baseline-load-"+mode.String(), time.Since(loadStart))
			sys := nw.collectAll(genesis.DefaultSystemChannelID)
			nw.verifyChains(genesis.DefaultSystemChannelID, sys)
			if len(sys[0]) != 3 {
				t.Errorf("system channel has %d blocks, want 3", len(sys[0]))
			}
		})
	}
}
