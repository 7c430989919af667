package deliver

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Blocks are sent as the ledger stored them. A DeliverResponse holding a block is the block's
// encoding behind a two-part header (field 2, length), so the handler builds that header and
// hands both parts to gRPC: no decode of the stored block and no re-encode per follower, which
// is what makes serving a long chain, or one block to many followers, cheap.

// blockField is the field number of DeliverResponse.block.
const blockField = 2

// encodedResponse is a DeliverResponse carrying an already encoded block. Only the server
// codec (ServerCodec) knows how to send it.
type encodedResponse struct {
	raw []byte
}

// ServerCodec is the gRPC codec a server serving this package's Handler must use
// (grpc.ForceServerCodecV2): gRPC's protobuf codec, plus encodedResponse on the way out and,
// on the way in, messages that keep the bytes they arrive as (broadcast.Received).
func ServerCodec() encoding.CodecV2 {
	return codec{encoding.GetCodecV2(proto.Name)}
}

type codec struct{ encoding.CodecV2 }

// receivedUnmarshaler is a message that decodes itself from, and keeps, its received bytes.
type receivedUnmarshaler interface {
	UnmarshalReceived(b []byte) error
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(receivedUnmarshaler)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	// Materialize copies: the message owns the bytes after gRPC frees its buffers.
	return r.UnmarshalReceived(data.Materialize())
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*encodedResponse)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	hdr := protowire.AppendTag(make([]byte, 0, 1+protowire.SizeVarint(uint64(len(r.raw)))), blockField, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(len(r.raw)))
	return mem.BufferSlice{mem.SliceBuffer(hdr), mem.SliceBuffer(r.raw)}, nil
}
