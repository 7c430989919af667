// Package wire owns the gRPC codec of the orderer's AtomicBroadcast server: gRPC's protobuf
// codec with two shortcuts that keep bytes from being decoded or encoded twice.
//
//   - On the way in, a message that implements Received decodes itself from the bytes it
//     arrived as and keeps them (Broadcast produces an envelope to Kafka as it came).
//   - On the way out, a message that implements Encoded hands over its encoding in parts
//     (Deliver sends a stored block behind a header it builds, without decoding the block).
//
// Everything else goes through protobuf as usual, so handlers that use neither shortcut work
// unchanged on a server with this codec.
package wire

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Received is a message that decodes itself from, and keeps, the bytes it was received as.
type Received interface {
	UnmarshalReceived(b []byte) error
}

// Encoded is an outgoing message that is already encoded: its encoding is the concatenation
// of the parts, which the codec hands to gRPC as they are and which must not change
// afterwards.
type Encoded interface {
	EncodedParts() mem.BufferSlice
}

// ServerCodec is the codec an orderer's gRPC server uses (grpc.ForceServerCodecV2).
func ServerCodec() encoding.CodecV2 {
	return codec{encoding.GetCodecV2(proto.Name)}
}

type codec struct{ encoding.CodecV2 }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(Received)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	// Materialize copies: the message owns the bytes after gRPC frees its buffers.
	return r.UnmarshalReceived(data.Materialize())
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	e, ok := v.(Encoded)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	return e.EncodedParts(), nil
}
