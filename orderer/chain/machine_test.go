package chain

import (
	"errors"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
)

type stubReval struct{ valid bool }

func (s stubReval) ValidateNormal(*channelconfig.Values, *cb.Envelope) error {
	if s.valid {
		return nil
	}
	return errors.New("invalid")
}

func (s stubReval) ReprocessConfig(_ *channelconfig.Values, env *cb.Envelope) (*cb.Envelope, error) {
	if s.valid {
		return env, nil
	}
	return nil, errors.New("invalid")
}

func testConfig(seq uint64) *channelconfig.Values {
	return &channelconfig.Values{
		ChannelID: "ch", Sequence: seq, Consensus: "kafka",
		BatchSize:           ab.BatchSize{MaxMessageCount: 3, PreferredMaxBytes: 1000, AbsoluteMaxBytes: 2000},
		OrdererCapabilities: map[string]bool{"V2_0": true},
	}
}

func newTestMachine(t testing.TB, km *ab.KafkaMetadata, seq uint64, valid bool) *Machine {
	t.Helper()
	last := blocks.New(4, []byte("prev"), [][]byte{[]byte("x")})
	if km != nil {
		if err := blocks.Finish(last, 0, km, nil); err != nil {
			t.Fatal(err)
		}
	}
	m, err := NewMachine(State{LastBlock: last, Config: testConfig(seq)}, stubReval{valid})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func regular(t testing.TB, size int, seq uint64, class ab.KafkaMessageRegular_Class, orig int64) []byte {
	t.Helper()
	env, _ := proto.Marshal(&cb.Envelope{Payload: make([]byte, size)})
	b, _ := proto.Marshal(&ab.KafkaMessage{Type: &ab.KafkaMessage_Regular{Regular: &ab.KafkaMessageRegular{Payload: env, ConfigSeq: seq, Class: class, OriginalOffset: orig}}})
	return b
}

func ttc(n uint64) []byte {
	b, _ := proto.Marshal(timeToCut(n))
	return b
}

func kinds(rd Ready) []EventKind {
	var k []EventKind
	for _, e := range rd.Events {
		k = append(k, e.Kind)
	}
	return k
}

func TestStartOffsetFromMetadata(t *testing.T) {
	m := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 41, LastOriginalOffsetProcessed: 7}, 1, true)
	if m.StartOffset() != 42 || m.NextOffset() != 42 || m.Height() != 5 {
		t.Fatalf("start %d next %d height %d", m.StartOffset(), m.NextOffset(), m.Height())
	}
	if m.ConfigPending() {
		t.Fatal("gate closed with LastResubmittedConfigOffset 0")
	}
	fresh := newTestMachine(t, nil, 1, true)
	if fresh.StartOffset() != -2 {
		t.Fatalf("fresh start %d, want -2", fresh.StartOffset())
	}
	// A re-submitted config not yet consumed before the restart keeps the gate closed.
	gated := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 50, LastOriginalOffsetProcessed: 7, LastResubmittedConfigOffset: 48}, 1, true)
	if !gated.ConfigPending() {
		t.Fatal("gate open with LRCO 48 > LOOP 7")
	}
}

func TestTimeToCutRules(t *testing.T) {
	m := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 9}, 1, true)
	// Nothing pending: Fabric halts; kord notes it and goes on.
	rd := m.Step(10, ttc(5))
	if len(rd.Blocks) != 0 || len(kinds(rd)) != 1 || kinds(rd)[0] != EventBadTTC {
		t.Fatalf("empty TTC: %+v", rd)
	}
	rd = m.Step(11, regular(t, 10, 1, ab.KafkaMessageRegular_NORMAL, 0))
	if rd.Timer != TimerStart {
		t.Fatalf("timer %v, want start", rd.Timer)
	}
	if got := m.Step(12, ttc(7)); kinds(got)[0] != EventBadTTC || len(got.Blocks) != 0 {
		t.Fatalf("future TTC: %+v", got)
	}
	if got := m.Step(13, ttc(4)); kinds(got)[0] != EventStaleTTC {
		t.Fatalf("stale TTC: %+v", got)
	}
	rd = m.Step(14, ttc(5))
	if len(rd.Blocks) != 1 || rd.Blocks[0].Block.Header.Number != 5 || rd.Blocks[0].Kafka.LastOffsetPersisted != 14 || rd.Timer != TimerStop {
		t.Fatalf("TTC cut: %+v", rd)
	}
	if m.TimerFired().GetTimeToCut().GetBlockNumber() != 6 {
		t.Fatal("next TTC should name block 6")
	}
}

func TestResubmissionAndDuplicates(t *testing.T) {
	m := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 9, LastOriginalOffsetProcessed: 5}, 2, true)
	rd := m.Step(10, regular(t, 10, 1, ab.KafkaMessageRegular_NORMAL, 0))
	if len(rd.Post) != 1 || rd.Post[0].GetRegular().OriginalOffset != 10 || rd.Post[0].GetRegular().ConfigSeq != 2 || len(rd.Blocks) != 0 {
		t.Fatalf("stale message not re-submitted: %+v", rd)
	}
	if got := m.Step(11, regular(t, 10, 2, ab.KafkaMessageRegular_NORMAL, 4)); kinds(got)[0] != EventDuplicate {
		t.Fatalf("duplicate not dropped: %+v", got)
	}
	m.Step(12, regular(t, 10, 2, ab.KafkaMessageRegular_NORMAL, 10))
	m.Step(13, regular(t, 10, 2, ab.KafkaMessageRegular_NORMAL, 0))
	rd = m.Step(14, regular(t, 10, 2, ab.KafkaMessageRegular_NORMAL, 0))
	if len(rd.Blocks) != 1 || rd.Blocks[0].Kafka.LastOriginalOffsetProcessed != 10 {
		t.Fatalf("block after re-submission: %+v", rd.Blocks)
	}
	// A second copy of the same re-submission (another orderer's) is dropped.
	if got := m.Step(15, regular(t, 10, 2, ab.KafkaMessageRegular_NORMAL, 10)); kinds(got)[0] != EventDuplicate {
		t.Fatalf("second copy: %+v", got)
	}
	invalid := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 9}, 2, false)
	if got := invalid.Step(10, regular(t, 10, 1, ab.KafkaMessageRegular_NORMAL, 0)); kinds(got)[0] != EventDropped || len(got.Post) != 0 {
		t.Fatalf("invalid stale message: %+v", got)
	}
}

func TestUndecodableRecordsSkipped(t *testing.T) {
	m := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 9}, 1, true)
	for i, v := range [][]byte{{0xff, 0xff, 0xff}, {}, regular(t, 10, 1, 7, 0)} {
		rd := m.Step(int64(10+i), v)
		if len(rd.Blocks) != 0 || len(rd.Events) != 1 {
			t.Fatalf("record %d: %+v", i, rd)
		}
	}
	if got := m.Step(5, regular(t, 10, 1, ab.KafkaMessageRegular_NORMAL, 0)); kinds(got)[0] != EventIgnored {
		t.Fatalf("record below LastOffsetPersisted: %+v", got)
	}
}

// withHeader is a KafkaMessage carrying an ENDORSER_TRANSACTION envelope with a real header.
func withHeader(t testing.TB, seq uint64, class ab.KafkaMessageRegular_Class) []byte {
	t.Helper()
	chdr, _ := proto.Marshal(&cb.ChannelHeader{Type: int32(cb.HeaderType_ENDORSER_TRANSACTION), ChannelId: "ch"})
	payload, _ := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdr}, Data: []byte("tx")})
	env, _ := proto.Marshal(&cb.Envelope{Payload: payload, Signature: []byte("sig")})
	b, _ := proto.Marshal(&ab.KafkaMessage{Type: &ab.KafkaMessage_Regular{Regular: &ab.KafkaMessageRegular{Payload: env, ConfigSeq: seq, Class: class}}})
	return b
}

// Class UNKNOWN (a pre-1.1 orderer) is re-validated at consumption even at the current config
// sequence: committed in place when still valid, dropped otherwise, never re-submitted.
func TestCompatibilityModeRevalidates(t *testing.T) {
	valid := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 9}, 1, true)
	if rd := valid.Step(10, withHeader(t, 1, ab.KafkaMessageRegular_UNKNOWN)); len(rd.Events) != 0 || len(rd.Post) != 0 || rd.Timer != TimerStart {
		t.Fatalf("valid UNKNOWN-class message not committed: %+v", rd)
	}
	if rd := valid.Step(11, ttc(5)); len(rd.Blocks) != 1 || len(rd.Blocks[0].Block.Data.Data) != 1 {
		t.Fatalf("valid UNKNOWN-class message not in the next block: %+v", rd)
	}
	invalid := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 9}, 1, false)
	if rd := invalid.Step(10, withHeader(t, 1, ab.KafkaMessageRegular_UNKNOWN)); len(kinds(rd)) != 1 || kinds(rd)[0] != EventDropped || len(rd.Post) != 0 {
		t.Fatalf("invalid UNKNOWN-class message: %+v", rd)
	}
	// An envelope without a header cannot even be classified.
	if got := valid.Step(12, regular(t, 10, 1, ab.KafkaMessageRegular_UNKNOWN, 0)); kinds(got)[0] != EventDropped {
		t.Fatalf("headerless UNKNOWN-class message: %+v", got)
	}
}

// FuzzStep feeds arbitrary record values (Kafka is not trusted input: anyone with produce
// rights on the topic can write to it) and checks the machine never panics and keeps its
// block chain linked.
func FuzzStep(f *testing.F) {
	f.Add(regular(f, 10, 1, ab.KafkaMessageRegular_NORMAL, 0), ttc(5))
	f.Add([]byte{0xff}, []byte{})
	f.Add(regular(f, 5000, 0, ab.KafkaMessageRegular_CONFIG, 3), regular(f, 1, 1, ab.KafkaMessageRegular_UNKNOWN, 0))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		m := newTestMachine(t, &ab.KafkaMetadata{LastOffsetPersisted: 9}, 1, true)
		next := m.Height()
		for i, v := range [][]byte{a, b, a, ttc(5), b, ttc(6)} {
			rd := m.Step(int64(10+i), v)
			for _, blk := range rd.Blocks {
				if blk.Block.Header.Number != next {
					t.Fatalf("block %d, want %d", blk.Block.Header.Number, next)
				}
				next++
			}
		}
	})
}
