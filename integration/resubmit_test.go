package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	fconfigtx "github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/msgprocessor"
	"github.com/kordhq/kord/orderer/msp"
)

// TestStaleConfigResubmitted injects two CONFIG records built under config sequence S after a
// config update A has moved the channel to S+1: B, which touches another part of the config
// and still applies, and C, which edits the element A edited from the same read version and so
// no longer applies. Every orderer re-processes B, re-submits it, and orders the first copy
// consumed as the only block carrying B; C is dropped without a block or a copy. orderer2 is
// down while the records arrive, re-submits B after its restart, and ends with the same chain.
// Broadcast works on every orderer afterwards, so no gate stays closed.
func TestStaleConfigResubmitted(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ch = "chan-s"
	nw.createChannel(ch)
	before, _ := nw.configOf(ctx, nw.orderers[0], ch)
	seq := before.Sequence

	// A and C both set BatchTimeout, so C's write of that value is one version behind once A
	// is in; B adds an anchor peer to Org2, which A leaves alone.
	const timeoutA, timeoutC = 300 * time.Millisecond, 400 * time.Millisecond
	anchor := fconfigtx.Address{Host: "peer0.org2.example.com", Port: 9051}
	signedUpdate := func(name string, edit func(*fconfigtx.ConfigTx) error, s client.Signer) *cb.Envelope {
		t.Helper()
		env, err := client.ComputeUpdate(before.Config, ch, edit)
		if err != nil {
			t.Fatalf("computing update %s: %v", name, err)
		}
		signed, err := client.SignConfigUpdate(env, s)
		if err != nil {
			t.Fatalf("signing update %s: %v", name, err)
		}
		return signed
	}
	updA := signedUpdate("A", func(tx *fconfigtx.ConfigTx) error { return tx.Orderer().SetBatchTimeout(timeoutA) }, nw.ordererAdmin())
	updB := signedUpdate("B", func(tx *fconfigtx.ConfigTx) error {
		return tx.Application().Organization("Org2").AddAnchorPeer(anchor)
	}, nw.admin(1))
	updC := signedUpdate("C", func(tx *fconfigtx.ConfigTx) error { return tx.Orderer().SetBatchTimeout(timeoutC) }, nw.ordererAdmin())

	// The stale records are what orderer0 would have produced for B and C under sequence S:
	// the CONFIG envelopes its message processor builds from the updates, signed by it.
	ordSigner, err := msp.LoadSigner(nw.orderers[0].mspDir, nw.spec.OrdererOrgs[0].MSPID)
	if err != nil {
		t.Fatal(err)
	}
	proc := &msgprocessor.Processor{Signer: ordSigner}
	configB, err := proc.ProcessConfigUpdate(before, updB)
	if err != nil {
		t.Fatalf("update B at sequence %d: %v", seq, err)
	}
	configC, err := proc.ProcessConfigUpdate(before, updC)
	if err != nil {
		t.Fatalf("update C at sequence %d: %v", seq, err)
	}
	rawB, rawC := mustMarshal(t, configB), mustMarshal(t, configC)

	conn0 := nw.orderers[0].dial()
	defer conn0.Close()
	if resp, err := client.Broadcast(ctx, conn0, updA); err != nil || resp.Status != cb.Status_SUCCESS {
		t.Fatalf("update A: %v %v, want SUCCESS", resp, err)
	}
	nw.waitConfig(ctx, ch, seq+1)

	down := nw.orderers[2]
	down.stop()
	prod, err := kafka.NewProducer(ctx, kafka.Options{Brokers: nw.brokers, Version: "1.0.0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	offB, err := prod.Produce(ctx, ch, kafka.MarshalRegular(rawB, seq, ab.KafkaMessageRegular_CONFIG, 0))
	if err != nil {
		t.Fatalf("injecting B: %v", err)
	}
	offC, err := prod.Produce(ctx, ch, kafka.MarshalRegular(rawC, seq, ab.KafkaMessageRegular_CONFIG, 0))
	if err != nil {
		t.Fatalf("injecting C: %v", err)
	}
	t.Logf("stale B at offset %d, stale C at offset %d (config sequence %d, channel at %d)", offB, offC, seq, seq+1)

	// B's copy lands in the log after B at a moment of the orderers' choosing, so wait for its
	// config block first; a normal envelope sent afterwards is behind C and every copy produced
	// so far, and its delivery shows the two live orderers processed them.
	live := &network{t: t, orderers: nw.orderers[:2], user: nw.user}
	t.Logf("waiting for B's re-submitted copy to become config sequence %d on the live orderers", seq+2)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	live.waitConfig(wctx, ch, seq+2)
	wcancel()
	conn1 := nw.orderers[1].dial()
	defer conn1.Close()
	bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
	tail := broadcastStream(bctx, conn1, nw.user, ch, 1, payloads(11, 0), nil)
	bcancel()
	if len(tail.acked) != 1 {
		t.Fatalf("envelope after the stale records: %v (is orderer1's gate still closed?)", tail)
	}
	want := map[string]string{tail.acked[0]: nw.orderers[1].name}
	live.collectChains(ch, want, time.Minute)

	down.start()
	down.waitReady()
	nw.verifyChains(ch, nw.collectChains(ch, want, time.Minute))

	// Broadcast goes through on every orderer: none is left waiting for a re-submitted config.
	for i, o := range nw.orderers {
		bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
		conn := o.dial()
		r := broadcastStream(bctx, conn, nw.user, ch, 1, payloads(uint64(20+i), 0), nil)
		conn.Close()
		bcancel()
		if len(r.acked) != 1 {
			t.Fatalf("%s: broadcast after the re-submission: %v (is its gate still closed?)", o.name, r)
		}
		want[r.acked[0]] = o.name
	}
	chains := nw.collectChains(ch, want, time.Minute)
	nw.verifyChains(ch, chains)

	// Every orderer re-submitted B once it consumed it (orderer2 after its restart); nobody
	// re-submitted C. The copies are signed by the orderer that re-processed B.
	last, err := blocks.KafkaMetadata(chains[0][len(chains[0])-1])
	if err != nil || last == nil {
		t.Fatalf("Kafka metadata of the last block: %v, %v", last, err)
	}
	var copies []resubmitted
	for _, r := range topicRecords(ctx, t, nw.brokers, ch, offB+1, last.LastOffsetPersisted) {
		reg := r.msg.GetRegular()
		if reg == nil {
			continue
		}
		switch reg.OriginalOffset {
		case offC:
			t.Errorf("offset %d: C was re-submitted, though it no longer applies", r.offset)
		case offB:
			if reg.Class != ab.KafkaMessageRegular_CONFIG || reg.ConfigSeq != seq+1 {
				t.Errorf("offset %d: copy of B with class %v and config sequence %d, want CONFIG and %d", r.offset, reg.Class, reg.ConfigSeq, seq+1)
			}
			copies = append(copies, resubmitted{offset: r.offset, payload: reg.Payload, signer: nw.signerName(t, reg.Payload)})
		}
	}
	var signers []string
	for _, c := range copies {
		signers = append(signers, c.signer)
	}
	for _, o := range nw.orderers {
		if !slices.Contains(signers, o.name) {
			t.Errorf("no copy of B re-submitted by %s; copies at offsets after %d signed by %v", o.name, offB, signers)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	first := copies[0]
	t.Logf("B re-submitted %d times (by %v); first copy at offset %d", len(copies), signers, first.offset)

	idA, idB, idC := configUpdateBytes(t, updA), configUpdateBytes(t, updB), configUpdateBytes(t, updC)
	for i, chain := range chains {
		o := nw.orderers[i]
		var withA, withB, withC []*cb.Block
		for _, b := range chain[1:] {
			if txs := blockTxs(b); len(txs) != 1 || txs[0].headerType != cb.HeaderType_CONFIG {
				continue
			}
			switch id := lastUpdateOf(t, b); {
			case bytes.Equal(id, idA):
				withA = append(withA, b)
			case bytes.Equal(id, idB):
				withB = append(withB, b)
			case bytes.Equal(id, idC):
				withC = append(withC, b)
			default:
				t.Errorf("%s: config block %d carries an update that is none of A, B and C", o.name, b.Header.Number)
			}
		}
		if len(withA) != 1 || len(withB) != 1 || len(withC) != 0 {
			t.Errorf("%s: config blocks carrying A %d, B %d, C %d; want 1, 1, 0", o.name, len(withA), len(withB), len(withC))
			continue
		}
		blkB := withB[0]
		if withA[0].Header.Number > blkB.Header.Number {
			t.Errorf("%s: B's config block %d precedes A's %d", o.name, blkB.Header.Number, withA[0].Header.Number)
		}
		switch {
		case bytes.Equal(blkB.Data.Data[0], rawB):
			t.Errorf("%s: B's config block %d holds the stale record's envelope, not a re-processed copy", o.name, blkB.Header.Number)
		case !bytes.Equal(blkB.Data.Data[0], first.payload):
			t.Errorf("%s: B's config block %d does not hold the first copy (offset %d) byte for byte", o.name, blkB.Header.Number, first.offset)
		}
		km, err := blocks.KafkaMetadata(blkB)
		if err != nil || km == nil {
			t.Errorf("%s: block %d: Kafka metadata %v, %v", o.name, blkB.Header.Number, km, err)
			continue
		}
		if km.LastOffsetPersisted != first.offset || km.LastOriginalOffsetProcessed != offB || km.LastResubmittedConfigOffset != offB {
			t.Errorf("%s: B's config block %d has Kafka metadata {LastOffsetPersisted %d, LastOriginalOffsetProcessed %d, LastResubmittedConfigOffset %d}; want {%d, %d, %d}",
				o.name, blkB.Header.Number, km.LastOffsetPersisted, km.LastOriginalOffsetProcessed, km.LastResubmittedConfigOffset, first.offset, offB, offB)
		}
	}

	// The channel ends at S+2 with both A's and B's changes, on every orderer.
	for _, o := range nw.orderers {
		cfg, _ := nw.configOf(ctx, o, ch)
		if cfg.Sequence != seq+2 || cfg.BatchTimeout != timeoutA {
			t.Errorf("%s: final config at sequence %d with BatchTimeout %v; want %d and %v (A's)", o.name, cfg.Sequence, cfg.BatchTimeout, seq+2, timeoutA)
		}
		tx := fconfigtx.New(cfg.Config)
		if peers, err := tx.Application().Organization("Org2").AnchorPeers(); err != nil || !slices.Contains(peers, anchor) {
			t.Errorf("%s: Org2's anchor peers %v (%v), want B's %v among them", o.name, peers, err, anchor)
		}
	}

	// C was dropped because it no longer applies, not for some unrelated reason. orderer2's
	// current run is the one that consumed it.
	for _, o := range nw.orderers {
		line := logLine(o.logSinceStart(), fmt.Sprintf("offset=%d", offC), "kind=dropped", "version")
		if line == "" {
			t.Errorf("%s: no log line about dropping C (offset %d) for a version mismatch", o.name, offC)
			continue
		}
		t.Logf("%s: %s", o.name, line)
	}
}

// resubmitted is a copy of B found in the topic, with the orderer that signed it.
type resubmitted struct {
	offset  int64
	payload []byte
	signer  string
}

type topicRecord struct {
	offset int64
	msg    *ab.KafkaMessage
}

// topicRecords reads partition 0 of topic from offset from through offset to.
func topicRecords(ctx context.Context, t *testing.T, brokers []string, topic string, from, to int64) []topicRecord {
	t.Helper()
	c, err := kafka.NewConsumer(ctx, kafka.Options{Brokers: brokers, Version: "1.0.0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(ctx, topic, from)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var out []topicRecord
	var lastErr error
	for next := from; next <= to; {
		select {
		case r, ok := <-pc.Records():
			if !ok {
				t.Fatalf("reading %s: partition closed at offset %d, want up to %d (last error: %v)", topic, next, to, lastErr)
			}
			next = r.Offset + 1
			m, err := kafka.Unmarshal(r.Value)
			if err != nil {
				t.Fatalf("reading %s: offset %d: %v", topic, r.Offset, err)
			}
			out = append(out, topicRecord{offset: r.Offset, msg: m})
		case err, ok := <-pc.Errors():
			// Transient errors are retried by the consumer; the last one explains a timeout.
			if ok {
				lastErr = err
			}
		case <-ctx.Done():
			t.Fatalf("reading %s: at offset %d of %d when time ran out (last error: %v)", topic, next, to, lastErr)
		}
	}
	return out
}

// signerName names the orderer whose identity signed the marshalled envelope raw.
func (nw *network) signerName(t *testing.T, raw []byte) string {
	t.Helper()
	creator := envelopeCreator(t, raw)
	for _, o := range nw.orderers {
		if bytes.Equal(creator, o.id) {
			return o.name
		}
	}
	return "(not an orderer)"
}

func envelopeCreator(t *testing.T, raw []byte) []byte {
	t.Helper()
	env := &cb.Envelope{}
	if err := proto.Unmarshal(raw, env); err != nil {
		t.Fatal(err)
	}
	p, err := msgprocessor.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	return p.Creator
}

// configUpdateBytes is the marshalled ConfigUpdate inside a CONFIG_UPDATE envelope: what
// identifies an update whoever signed it and whichever orderer wrapped it into a CONFIG.
func configUpdateBytes(t *testing.T, env *cb.Envelope) []byte {
	t.Helper()
	cue, _, err := client.ConfigUpdateEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return cue.ConfigUpdate
}

// lastUpdateOf is configUpdateBytes of the update a config block applied.
func lastUpdateOf(t *testing.T, b *cb.Block) []byte {
	t.Helper()
	env := &cb.Envelope{}
	if err := proto.Unmarshal(b.Data.Data[0], env); err != nil {
		t.Fatal(err)
	}
	ce, _, err := channelconfig.UnwrapConfigEnvelope(env)
	if err != nil {
		t.Fatalf("config block %d: %v", b.Header.Number, err)
	}
	if ce.LastUpdate == nil {
		t.Fatalf("config block %d carries no config update", b.Header.Number)
	}
	return configUpdateBytes(t, ce.LastUpdate)
}

// logLine is the first line of log that contains every one of parts, or "".
func logLine(log string, parts ...string) string {
	for _, line := range strings.Split(log, "\n") {
		if containsAll(line, parts) {
			return line
		}
	}
	return ""
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
