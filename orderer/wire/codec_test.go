package wire

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type received struct{ b []byte }

func (r *received) UnmarshalReceived(b []byte) error { r.b = b; return nil }

type encoded mem.BufferSlice

func (e encoded) EncodedParts() mem.BufferSlice { return mem.BufferSlice(e) }

func TestCodec(t *testing.T) {
	c := ServerCodec()
	msg := wrapperspb.Bytes([]byte("block"))
	want, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}

	// A pre-encoded message goes out as its parts, byte for byte, and decodes as the message
	// it stands for.
	out, err := c.Marshal(encoded{mem.SliceBuffer(want[:2]), mem.SliceBuffer(want[2:])})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !bytes.Equal(out.Materialize(), want) {
		t.Fatalf("pre-encoded: %d parts %x, want 2 parts %x", len(out), out.Materialize(), want)
	}
	got := &wrapperspb.BytesValue{}
	if err := c.Unmarshal(out, got); err != nil || !proto.Equal(got, msg) {
		t.Fatalf("decoding the parts: %v, %v", got, err)
	}

	// A Received message keeps the bytes it arrived as, in a copy of its own.
	buf := append([]byte(nil), want...)
	r := &received{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(buf)}, r); err != nil {
		t.Fatal(err)
	}
	buf[0] ^= 0xff
	if !bytes.Equal(r.b, want) {
		t.Fatalf("received %x, want %x (a copy, unaffected by the buffer's reuse)", r.b, want)
	}

	// Anything else is protobuf.
	plain, err := c.Marshal(msg)
	if err != nil || !bytes.Equal(plain.Materialize(), want) {
		t.Fatalf("protobuf: %x, %v; want %x", plain.Materialize(), err, want)
	}
}
