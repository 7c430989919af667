package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/client"
)

// bytesCodec sends []byte messages as they are, everything else as protobuf: a client that
// can put any encoding of an envelope on the wire.
type bytesCodec struct{ encoding.CodecV2 }

func (c bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// TestReceivedEnvelopeBytes: a canonically encoded envelope (what SDKs send) is ordered as
// the bytes that came, and one encoded otherwise (fields in the other order) is ordered as
// Fabric orders it, re-encoded; both are acknowledged and land in the block.
func TestReceivedEnvelopeBytes(t *testing.T) {
	n := newTestNet(t, embedded.Config{}, nil)
	n.start()
	ctx := testCtx(t, 60*time.Second)
	n.createChannel(ctx, "raw")
	conn := n.dial(nil)

	canon, err := client.Envelope(n.user, cb.HeaderType_ENDORSER_TRANSACTION, "raw", []byte("canonical"))
	if err != nil {
		t.Fatal(err)
	}
	canonBytes, _ := proto.Marshal(canon)
	other, err := client.Envelope(n.user, cb.HeaderType_ENDORSER_TRANSACTION, "raw", []byte("reordered"))
	if err != nil {
		t.Fatal(err)
	}
	otherWant, _ := proto.Marshal(other)
	// signature (field 2) first, then payload (field 1): decodes to the same envelope.
	reordered := []byte{0x12}
	reordered = append(reordered, proto.EncodeVarint(uint64(len(other.Signature)))...)
	reordered = append(reordered, other.Signature...)
	reordered = append(reordered, 0x0a)
	reordered = append(reordered, proto.EncodeVarint(uint64(len(other.Payload)))...)
	reordered = append(reordered, other.Payload...)
	if bytes.Equal(reordered, otherWant) {
		t.Fatal("test envelope is canonical")
	}

	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
		"/orderer.AtomicBroadcast/Broadcast", grpc.ForceCodecV2(bytesCodec{encoding.GetCodecV2(gproto.Name)}))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{canonBytes, reordered} {
		if err := stream.SendMsg(b); err != nil {
			t.Fatal(err)
		}
		var resp ab.BroadcastResponse
		if err := stream.RecvMsg(&resp); err != nil || resp.Status != cb.Status_SUCCESS {
			t.Fatalf("broadcast: %v %v", resp.Status, err)
		}
	}
	var got [][]byte // the envelopes of blocks 1, 2, ... until both came
	for num := uint64(1); len(got) < 2; num++ {
		blk, err := client.WaitBlock(ctx, conn, n.user, "raw", num, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, blk.Data.Data...)
	}
	if len(got) != 2 || !bytes.Equal(got[0], canonBytes) || !bytes.Equal(got[1], otherWant) {
		t.Fatalf("%d envelopes ordered; want the canonical one as sent and the reordered one re-encoded", len(got))
	}
}
