package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/client"
)

// fakeSigner signs nothing; the fake orderer checks nothing.
type fakeSigner struct{}

func (fakeSigner) Serialize() []byte           { return []byte("creator") }
func (fakeSigner) Sign([]byte) ([]byte, error) { return []byte("sig"), nil }
func (fakeSigner) NewSignatureHeader() (*cb.SignatureHeader, error) {
	n := make([]byte, 24)
	_, _ = rand.Read(n)
	return &cb.SignatureHeader{Creator: []byte("creator"), Nonce: n}, nil
}

// fakeOrderer acknowledges every envelope (refusing those whose payload data starts with
// refuseByte) and cuts blocks of up to batch envelopes every few milliseconds.
type fakeOrderer struct {
	ab.UnimplementedAtomicBroadcastServer
	batch  int
	full   bool // cut only full blocks of batch envelopes, as an orderer at MaxMessageCount
	refuse func(*cb.Envelope) bool

	mu      sync.Mutex
	queue   [][]byte
	height  uint64
	cond    *sync.Cond
	dupNext bool // deliver the next envelope twice
}

func newFakeOrderer(t *testing.T, batch int) (*fakeOrderer, string) {
	f := &fakeOrderer{batch: batch, height: 3}
	f.cond = sync.NewCond(&f.mu)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	ab.RegisterAtomicBroadcastServer(s, f)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return f, l.Addr().String()
}

func (f *fakeOrderer) Broadcast(srv ab.AtomicBroadcast_BroadcastServer) error {
	for {
		env, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		st := cb.Status_SUCCESS
		if f.refuse != nil && f.refuse(env) {
			st = cb.Status_BAD_REQUEST
		} else {
			raw, _ := proto.Marshal(env)
			f.mu.Lock()
			f.queue = append(f.queue, raw)
			if f.dupNext {
				f.queue = append(f.queue, raw)
				f.dupNext = false
			}
			f.mu.Unlock()
		}
		if err := srv.Send(&ab.BroadcastResponse{Status: st}); err != nil {
			return err
		}
	}
}

func (f *fakeOrderer) Deliver(srv ab.AtomicBroadcast_DeliverServer) error {
	if _, err := srv.Recv(); err != nil {
		return err
	}
	f.mu.Lock()
	n := f.height - 1
	f.mu.Unlock()
	// The newest block, then blocks as envelopes come.
	if err := srv.Send(&ab.DeliverResponse{Type: &ab.DeliverResponse_Block{Block: &cb.Block{Header: &cb.BlockHeader{Number: n}, Data: &cb.BlockData{Data: [][]byte{[]byte("not an envelope")}}}}}); err != nil {
		return err
	}
	for srv.Context().Err() == nil {
		f.mu.Lock()
		k := min(len(f.queue), f.batch)
		if f.full && k < f.batch {
			k = 0
		}
		data := f.queue[:k:k]
		f.queue = f.queue[k:]
		num := f.height
		if k > 0 {
			f.height++
		}
		f.mu.Unlock()
		if k == 0 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if err := srv.Send(&ab.DeliverResponse{Type: &ab.DeliverResponse_Block{Block: &cb.Block{Header: &cb.BlockHeader{Number: num}, Data: &cb.BlockData{Data: data}}}}); err != nil {
			return err
		}
	}
	return nil
}

func dialer(addr string) func(context.Context) (*grpc.ClientConn, error) {
	return func(ctx context.Context) (*grpc.ClientConn, error) { return client.Dial(ctx, addr, nil) }
}

// tally records what the hooks saw.
type tally struct {
	mu        sync.Mutex
	acked     map[string]bool
	delivered map[string]int
}

func newTally() *tally { return &tally{acked: map[string]bool{}, delivered: map[string]int{}} }

func (t *tally) onAck(id string, st cb.Status) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st == cb.Status_SUCCESS {
		t.acked[id] = true
	}
}

func (t *tally) onDelivered(id string, _ uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delivered[id]++
}

func TestRunAgainstFakeOrderer(t *testing.T) {
	for _, onTheFly := range []bool{false, true} {
		name := "prepared"
		if onTheFly {
			name = "sign-on-the-fly"
		}
		t.Run(name, func(t *testing.T) {
			f, addr := newFakeOrderer(t, 25)
			var refusedIDs sync.Map
			f.refuse = func(env *cb.Envelope) bool {
				id, _ := client.TxID(env)
				// About one envelope in 16.
				if id[0] == '0' {
					refusedIDs.Store(id, true)
					return true
				}
				return false
			}
			tl := newTally()
			var progress []Progress
			var pmu sync.Mutex
			rep, err := Run(context.Background(), Config{
				Dial: dialer(addr), Signer: fakeSigner{}, Channel: "ch",
				Streams: 3, Count: 1500, Size: 1024, SignOnTheFly: onTheFly, Deliver: true,
				OnAck: tl.onAck, OnDelivered: tl.onDelivered,
				Progress:         func(p Progress) { pmu.Lock(); progress = append(progress, p); pmu.Unlock() },
				ProgressInterval: 10 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			var nRefused uint64
			refusedIDs.Range(func(any, any) bool { nRefused++; return true })
			if rep.Sent != 1500 || rep.Acknowledged+nRefused != 1500 || rep.Refused["BAD_REQUEST"] != nRefused {
				t.Fatalf("sent %d acked %d refused %v, want 1500 / %d refused", rep.Sent, rep.Acknowledged, rep.Refused, nRefused)
			}
			if rep.Delivered != rep.Acknowledged || rep.Undelivered != 0 || rep.Unanswered != 0 || len(rep.Errors) != 0 {
				t.Fatalf("report %+v", rep)
			}
			if len(tl.acked) != int(rep.Acknowledged) {
				t.Fatalf("%d distinct acknowledged tx IDs, report says %d", len(tl.acked), rep.Acknowledged)
			}
			for id := range tl.acked {
				if tl.delivered[id] != 1 {
					t.Fatalf("tx %s delivered %d times", id, tl.delivered[id])
				}
			}
			if rep.Blocks < (rep.Delivered+24)/25 || rep.EnvelopesPerBlock <= 0 || rep.EnvelopesPerBlock > 25 {
				t.Fatalf("%d blocks of %v envelopes", rep.Blocks, rep.EnvelopesPerBlock)
			}
			if rep.Foreign != 0 {
				t.Fatalf("%d foreign envelopes (the newest block at the start must be skipped)", rep.Foreign)
			}
			if rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P95 || rep.Latency.P95 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
				t.Fatalf("latency %+v", rep.Latency)
			}
			if rep.AckLatency.P99 <= 0 || rep.AcknowledgedRate <= 0 || rep.DeliveredRate <= 0 || rep.Elapsed <= 0 {
				t.Fatalf("report %+v", rep)
			}
			pmu.Lock()
			last := progress[len(progress)-1]
			pmu.Unlock()
			if last.Phase != "done" || last.Sent != 1500 || last.Delivered != rep.Delivered {
				t.Fatalf("last progress %+v", last)
			}
		})
	}
}

func TestRunDuplicateIsForeign(t *testing.T) {
	f, addr := newFakeOrderer(t, 10)
	f.dupNext = true
	tl := newTally()
	rep, err := Run(context.Background(), Config{
		Dial: dialer(addr), Signer: fakeSigner{}, Channel: "ch", Count: 50, Size: 10, Deliver: true,
		OnAck: tl.onAck, OnDelivered: tl.onDelivered,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Delivered != 50 || rep.Foreign != 1 {
		t.Fatalf("delivered %d foreign %d, want 50 and the duplicate", rep.Delivered, rep.Foreign)
	}
	dups := 0
	for _, n := range tl.delivered {
		if n > 1 {
			dups++
		}
	}
	if dups != 1 {
		t.Fatalf("%d duplicated tx IDs seen by OnDelivered", dups)
	}
}

func TestRunRateAndDuration(t *testing.T) {
	_, addr := newFakeOrderer(t, 50)
	// 300 envelopes/s for 0.5s over 2 streams, prepared: Rate·Duration envelopes.
	rep, err := Run(context.Background(), Config{
		Dial: dialer(addr), Signer: fakeSigner{}, Channel: "ch", Streams: 2, Duration: 500 * time.Millisecond,
		Rate: 300, Size: 100, Deliver: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent < 140 || rep.Sent > 151 {
		t.Fatalf("sent %d at 300/s in 0.5s", rep.Sent)
	}
	if rep.SentRate < 250 || rep.SentRate > 320 {
		t.Fatalf("sent %v/s at 300/s", rep.SentRate)
	}
	if rep.SendElapsed < 0.45 || rep.SendElapsed > 1 {
		t.Fatalf("sending took %vs", rep.SendElapsed)
	}
	if rep.Delivered != rep.Sent {
		t.Fatalf("delivered %d of %d", rep.Delivered, rep.Sent)
	}
	if rep.CutLatency.P50 <= 0 || rep.CutLatency.P50 > rep.Latency.P50 || rep.CutLatency.Max > rep.Latency.Max {
		t.Errorf("cut latency %+v against send→delivery %+v", rep.CutLatency, rep.Latency)
	}
	if rep.ClientCPU <= 0 {
		t.Errorf("client CPU %v", rep.ClientCPU)
	}
	// JSON carries the fields the issue lists.
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sent", "acknowledged", "refused", "delivered", "elapsed_s", "acknowledged_per_s", "delivered_per_s", "latency_ms", "ack_latency_ms", "cut_latency_ms", "client_cpu_s", "blocks", "envelopes_per_block"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q: %s", k, raw)
		}
	}
	lat := m["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p95", "p99"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
}

// TestCutLatency: with full blocks only, an envelope's latency is mostly the wait for its
// block to fill; the cut latency counts from the block's last envelope and leaves that out.
func TestCutLatency(t *testing.T) {
	f, addr := newFakeOrderer(t, 20)
	f.full = true
	// 400/s: a block of 20 fills in 50 ms.
	rep, err := Run(context.Background(), Config{
		Dial: dialer(addr), Signer: fakeSigner{}, Channel: "ch", Streams: 2, Count: 200, Rate: 400, Size: 10, Deliver: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Delivered != 200 || rep.Blocks != 10 {
		t.Fatalf("delivered %d in %d blocks", rep.Delivered, rep.Blocks)
	}
	if rep.Latency.Max < 40 || rep.CutLatency.P95 >= rep.Latency.P50 {
		t.Errorf("cut latency %+v against send→delivery %+v", rep.CutLatency, rep.Latency)
	}
}

func TestRunWithoutDeliver(t *testing.T) {
	_, addr := newFakeOrderer(t, 10)
	rep, err := Run(context.Background(), Config{
		Dial: dialer(addr), Signer: fakeSigner{}, Channel: "ch", Streams: 2, Count: 200, SignOnTheFly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Acknowledged != 200 || rep.Delivered != 0 || rep.Blocks != 0 || rep.AckLatency.P50 <= 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestRunBrokenStream(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	ab.RegisterAtomicBroadcastServer(s, &brokenOrderer{})
	go func() { _ = s.Serve(l) }()
	defer s.Stop()
	rep, err := Run(context.Background(), Config{Dial: dialer(l.Addr().String()), Signer: fakeSigner{}, Channel: "ch", Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Acknowledged != 10 || rep.Unanswered == 0 || len(rep.Errors) == 0 {
		t.Fatalf("report %+v", rep)
	}
}

// brokenOrderer answers ten envelopes, then ends the stream with an error.
type brokenOrderer struct {
	ab.UnimplementedAtomicBroadcastServer
}

func (brokenOrderer) Broadcast(srv ab.AtomicBroadcast_BroadcastServer) error {
	for range 10 {
		if _, err := srv.Recv(); err != nil {
			return err
		}
		if err := srv.Send(&ab.BroadcastResponse{Status: cb.Status_SUCCESS}); err != nil {
			return err
		}
	}
	return errors.New("gone")
}

func TestConfigChecks(t *testing.T) {
	d := dialer("127.0.0.1:1")
	for _, c := range []Config{
		{Signer: fakeSigner{}, Channel: "c", Count: 1},
		{Dial: d, Channel: "c", Count: 1},
		{Dial: d, Signer: fakeSigner{}, Count: 1},
		{Dial: d, Signer: fakeSigner{}, Channel: "c"},
		{Dial: d, Signer: fakeSigner{}, Channel: "c", Duration: time.Second}, // prepared, no count
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestEnvelopeTxID(t *testing.T) {
	env, err := client.Envelope(fakeSigner{}, cb.HeaderType_ENDORSER_TRANSACTION, "ch", make([]byte, 1024))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := client.TxID(env)
	raw, _ := proto.Marshal(env)
	if got, ok := envelopeTxID(raw); !ok || got != want {
		t.Fatalf("envelopeTxID %q %v, want %q", got, ok, want)
	}
	for _, bad := range [][]byte{nil, []byte("junk"), {0x0a, 0x05, 1}} {
		if id, ok := envelopeTxID(bad); ok {
			t.Errorf("%x: tx ID %q", bad, id)
		}
	}
}

func FuzzEnvelopeTxID(f *testing.F) {
	env, _ := client.Envelope(fakeSigner{}, cb.HeaderType_ENDORSER_TRANSACTION, "ch", []byte("data"))
	raw, _ := proto.Marshal(env)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := envelopeTxID(b)
		if !ok {
			return
		}
		e := &cb.Envelope{}
		if proto.Unmarshal(b, e) != nil {
			return
		}
		if want, err := client.TxID(e); err == nil && want != id {
			t.Fatalf("tx ID %q, proto says %q", id, want)
		}
	})
}
