package integration

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/golang/protobuf/ptypes/timestamp"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/client"
)

// garbage is not a protocol buffer: its first byte is a tag with wire type 7, which does not
// exist.
var garbage = []byte("\x0f\xde\xad\xbe\xef this is not a protocol buffer")

// broadcastRefusal sends env on a new Broadcast stream and returns the response. When the
// response is a refusal it also checks that the orderer ended the stream, as Fabric does: a
// good envelope sent after it gets no response. It returns that envelope's tx ID (which must
// never be ordered), or "" when env was accepted.
func broadcastRefusal(ctx context.Context, t *testing.T, conn *grpc.ClientConn, s client.Signer, env *cb.Envelope) (*ab.BroadcastResponse, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
	if err != nil {
		t.Fatalf("opening a Broadcast stream: %v", err)
	}
	if err := stream.Send(env); err != nil {
		t.Fatalf("sending: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("no Broadcast response: %v", err)
	}
	if resp.Status == cb.Status_SUCCESS {
		return resp, ""
	}
	after, err := client.Envelope(s, cb.HeaderType_ENDORSER_TRANSACTION, appChannel, []byte("sent after a refusal"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := client.TxID(after)
	_ = stream.Send(after) // may fail if the stream is already gone
	if extra, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after a %v response the stream should end; got response %v, error %v", resp.Status, extra, err)
	}
	return resp, id
}

// TestBadInputGetsStatusAndServerKeepsServing sends malformed, unauthorised, oversized and
// misdirected requests to Broadcast and Deliver, checks each gets Fabric's status, and that
// after each one the orderer still orders and delivers good transactions.
func TestBadInputGetsStatusAndServerKeepsServing(t *testing.T) {
	began := time.Now()
	nw := newNetwork(t, 1)
	nw.startAll()
	nw.createChannel(appChannel)
	o := nw.orderers[0]
	user := nw.user
	conn := o.dial()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	good := map[string]string{}         // tx IDs that must be in the chain exactly once
	neverOrdered := map[string]string{} // tx IDs sent after a refusal on the same stream

	// goodTx broadcasts a good envelope on a new stream and waits until it is delivered.
	goodTx := func(after string) {
		t.Helper()
		env, err := client.Envelope(user, cb.HeaderType_ENDORSER_TRANSACTION, appChannel, []byte("good transaction after "+after))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := client.TxID(env)
		resp, _ := broadcastRefusal(ctx, t, conn, user, env)
		if resp.Status != cb.Status_SUCCESS {
			t.Fatalf("after %s: a good envelope got %v %q", after, resp.Status, resp.Info)
		}
		good[id] = after
		dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
		defer dcancel()
		if _, err := deliverUntil(dctx, conn, user, appChannel, map[string]string{id: after}); err != nil {
			t.Fatalf("after %s: the good envelope was not delivered: %v", after, err)
		}
		if !o.running() {
			t.Fatalf("the orderer died after %s", after)
		}
	}
	goodTx("start-up")

	// Broadcast refusals.
	goodEnv := func(data []byte) *cb.Envelope {
		env, err := client.Envelope(user, cb.HeaderType_ENDORSER_TRANSACTION, appChannel, data)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	wrongChannel, err := client.Envelope(user, cb.HeaderType_ENDORSER_TRANSACTION, "nosuchchannel", []byte("tx"))
	if err != nil {
		t.Fatal(err)
	}
	badSig := goodEnv([]byte("tampered signature"))
	badSig.Signature[len(badSig.Signature)-1] ^= 0x01 // the last byte belongs to S
	clientConfig, err := client.Envelope(user, cb.HeaderType_CONFIG, appChannel, []byte("not from an orderer"))
	if err != nil {
		t.Fatal(err)
	}
	broadcastCases := []struct {
		name string
		env  *cb.Envelope
		want cb.Status
	}{
		{"garbage payload", &cb.Envelope{Payload: garbage, Signature: []byte("signature")}, cb.Status_BAD_REQUEST},
		{"empty envelope", &cb.Envelope{}, cb.Status_BAD_REQUEST},
		{"unknown channel", wrongChannel, cb.Status_NOT_FOUND},
		{"payload above AbsoluteMaxBytes", goodEnv(make([]byte, absoluteMaxBytes)), cb.Status_BAD_REQUEST},
		{"bad signature", badSig, cb.Status_FORBIDDEN},
		{"missing signature header", noSignatureHeader(t, user), cb.Status_FORBIDDEN},
		{"CONFIG envelope from a client", clientConfig, cb.Status_BAD_REQUEST},
	}
	for _, c := range broadcastCases {
		resp, after := broadcastRefusal(ctx, t, conn, user, c.env)
		if resp.Status != c.want {
			t.Errorf("Broadcast %s: status %v (%q), want %v", c.name, resp.Status, resp.Info, c.want)
		} else if resp.Info == "" {
			t.Errorf("Broadcast %s: %v without Info", c.name, resp.Status)
		} else {
			t.Logf("Broadcast %s: %v %q", c.name, resp.Status, resp.Info)
		}
		if after != "" {
			neverOrdered[after] = c.name
		}
		goodTx("Broadcast " + c.name)
	}

	// Deliver refusals. Each goes on a stream that afterwards must still serve a good request,
	// as a Fabric orderer's Deliver stream does.
	h := chainHeight(ctx, t, conn, user)
	if h < 2 {
		t.Fatalf("height %d, want at least 2", h)
	}
	seek := func(channelID string, start, stop *ab.SeekPosition, behavior ab.SeekInfo_SeekBehavior) *cb.Envelope {
		env, err := client.SeekEnvelope(user, channelID, start, stop, behavior)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	rawSeek := func(data []byte) *cb.Envelope {
		env, err := client.Envelope(user, cb.HeaderType_DELIVER_SEEK_INFO, appChannel, data)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	noStop, err := proto.Marshal(&ab.SeekInfo{Start: client.Oldest(), Behavior: ab.SeekInfo_BLOCK_UNTIL_READY})
	if err != nil {
		t.Fatal(err)
	}
	badSeekSig := seek(appChannel, client.Oldest(), client.Oldest(), ab.SeekInfo_BLOCK_UNTIL_READY)
	badSeekSig.Signature[len(badSeekSig.Signature)-1] ^= 0x01
	deliverCases := []struct {
		name string
		env  func() *cb.Envelope // built when used: some depend on the height then
		want cb.Status
	}{
		{"garbage seek info", func() *cb.Envelope { return rawSeek(garbage) }, cb.Status_BAD_REQUEST},
		{"garbage payload", func() *cb.Envelope { return &cb.Envelope{Payload: garbage, Signature: []byte("sig")} }, cb.Status_BAD_REQUEST},
		{"seek info without stop", func() *cb.Envelope { return rawSeek(noStop) }, cb.Status_BAD_REQUEST},
		{"unknown channel", func() *cb.Envelope {
			return seek("nosuchchannel", client.Oldest(), client.Newest(), ab.SeekInfo_BLOCK_UNTIL_READY)
		}, cb.Status_NOT_FOUND},
		{"start beyond height", func() *cb.Envelope {
			h := chainHeight(ctx, t, conn, user)
			return seek(appChannel, client.Specified(h+5), client.Specified(h+10), ab.SeekInfo_BLOCK_UNTIL_READY)
		}, cb.Status_NOT_FOUND},
		{"FAIL_IF_NOT_READY for the next block", func() *cb.Envelope {
			h := chainHeight(ctx, t, conn, user)
			return seek(appChannel, client.Specified(h), client.Specified(h), ab.SeekInfo_FAIL_IF_NOT_READY)
		}, cb.Status_NOT_FOUND},
		{"stop before start", func() *cb.Envelope {
			return seek(appChannel, client.Specified(1), client.Specified(0), ab.SeekInfo_BLOCK_UNTIL_READY)
		}, cb.Status_BAD_REQUEST},
		{"bad signature", func() *cb.Envelope { return badSeekSig }, cb.Status_FORBIDDEN},
	}
	for _, c := range deliverCases {
		st, n := deliverThenGood(ctx, t, conn, c.env(), seek(appChannel, client.Specified(0), client.Specified(0), ab.SeekInfo_FAIL_IF_NOT_READY))
		if st != c.want || n != 0 {
			t.Errorf("Deliver %s: status %v with %d blocks, want %v and none", c.name, st, n, c.want)
		} else {
			t.Logf("Deliver %s: %v", c.name, st)
		}
		goodTx("Deliver " + c.name)
	}

	// The process is alive and healthy, and the chain is sound.
	if !o.running() {
		t.Fatal("the orderer is not running any more")
	}
	o.waitReady()
	chains := nw.collectChains(appChannel, good, 30*time.Second)
	nw.verifyChains(appChannel, chains)
	if n, _ := verifyTxs(t, chains[0], good); n != len(good) {
		t.Errorf("chain holds %d transactions, want the %d good ones", n, len(good))
	}
	all := nw.collectAll(appChannel)[0]
	for _, b := range all {
		for _, tx := range blockTxs(b) {
			if refusal, ok := neverOrdered[tx.id]; ok {
				t.Errorf("tx sent after the refusal of %q on the same stream was ordered (block %d)", refusal, b.Header.Number)
			}
		}
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// deliverThenGood sends bad and then good on one Deliver stream: it returns bad's status and
// how many blocks came before it, and requires good to be served (block 0, SUCCESS).
func deliverThenGood(ctx context.Context, t *testing.T, conn *grpc.ClientConn, bad, good *cb.Envelope) (cb.Status, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stream, err := ab.NewAtomicBroadcastClient(conn).Deliver(ctx)
	if err != nil {
		t.Fatalf("opening a Deliver stream: %v", err)
	}
	defer func() { _ = stream.CloseSend() }()
	read := func() (cb.Status, int) {
		n := 0
		for {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("Deliver stream: %v", err)
			}
			switch r := resp.Type.(type) {
			case *ab.DeliverResponse_Status:
				return r.Status, n
			case *ab.DeliverResponse_Block:
				n++
			}
		}
	}
	if err := stream.Send(bad); err != nil {
		t.Fatalf("sending: %v", err)
	}
	st, n := read()
	if err := stream.Send(good); err != nil {
		t.Fatalf("sending a good request after a %v: %v", st, err)
	}
	if gst, gn := read(); gst != cb.Status_SUCCESS || gn != 1 {
		t.Errorf("a good request on the stream after a %v got %v with %d blocks, want SUCCESS with 1", st, gst, gn)
	}
	return st, n
}

func chainHeight(ctx context.Context, t *testing.T, conn *grpc.ClientConn, s client.Signer) uint64 {
	t.Helper()
	h, err := height(ctx, conn, s, appChannel)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// noSignatureHeader is a signed envelope whose payload header has a channel header but no
// signature header.
func noSignatureHeader(t *testing.T, s client.Signer) *cb.Envelope {
	t.Helper()
	now := time.Now()
	chdr, err := proto.Marshal(&cb.ChannelHeader{
		Type:      int32(cb.HeaderType_ENDORSER_TRANSACTION),
		ChannelId: appChannel,
		TxId:      "no-signature-header",
		Timestamp: &timestamp.Timestamp{Seconds: now.Unix(), Nanos: int32(now.Nanosecond())},
	})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdr}, Data: []byte("tx")})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return &cb.Envelope{Payload: payload, Signature: sig}
}

// TestNothingOrderedAfterRefusalOnSameStream sends, on one Broadcast stream and without
// waiting for responses, an envelope that is refused followed by good ones. Like Fabric, the
// orderer answers the refusal and ends the stream; the envelopes after the refused one get no
// response and must therefore not be ordered either (a client resubmits them elsewhere).
//
// The handler validates envelopes in parallel and enqueues them in stream order, so this
// checks that the refusal of one stops everything behind it.
func TestNothingOrderedAfterRefusalOnSameStream(t *testing.T) {
	nw := newNetwork(t, 1)
	nw.startAll()
	nw.createChannel(appChannel)
	o := nw.orderers[0]
	conn := o.dial()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	unanswered := map[string]string{}
	for round := range 5 {
		stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := client.Envelope(nw.user, cb.HeaderType_ENDORSER_TRANSACTION, appChannel, make([]byte, absoluteMaxBytes))
		if err != nil {
			t.Fatal(err)
		}
		envs := []*cb.Envelope{bad}
		for range 20 {
			env, err := client.Envelope(nw.user, cb.HeaderType_ENDORSER_TRANSACTION, appChannel, []byte("sent right after a bad one"))
			if err != nil {
				t.Fatal(err)
			}
			id, _ := client.TxID(env)
			unanswered[id] = strconv.Itoa(round)
			envs = append(envs, env)
		}
		for _, env := range envs {
			if err := stream.Send(env); err != nil {
				break
			}
		}
		resp, err := stream.Recv()
		if err != nil || resp.Status != cb.Status_BAD_REQUEST {
			t.Fatalf("round %d: first response %v, err %v; want BAD_REQUEST", round, resp, err)
		}
		if extra, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("round %d: after the refusal got %v, %v; want the stream to end", round, extra, err)
		}
	}
	// A good transaction, delivered, marks the point by which anything produced earlier is
	// in the chain.
	flush := broadcastStream(ctx, conn, nw.user, appChannel, 1, func(int) []byte { return []byte("flush") }, nil)
	requireAllAcked(t, []streamResult{flush}, 1)
	want := map[string]string{flush.acked[0]: "flush"}
	chain := nw.collectChains(appChannel, want, 30*time.Second)[0]
	ordered := 0
	for _, b := range chain {
		for _, tx := range blockTxs(b) {
			if _, ok := unanswered[tx.id]; ok {
				ordered++
			}
		}
	}
	if ordered > 0 {
		t.Errorf("%d of %d envelopes sent after a refused one on the same stream were ordered without a response", ordered, len(unanswered))
	}
}
