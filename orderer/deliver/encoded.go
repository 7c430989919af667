package deliver

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kordhq/kord/orderer/wire"
)

// Blocks are sent as the ledger stored them. A DeliverResponse holding a block is the block's
// encoding behind a two-part header (field 2, length), so the handler builds that header and
// hands both parts to gRPC through the server's codec (orderer/wire): no decode of the stored
// block and no re-encode per follower, which is what makes serving a long chain, or one block
// to many followers, cheap.

// blockField is the field number of DeliverResponse.block.
const blockField = 2

// encodedResponse is a DeliverResponse carrying an already encoded block; it implements
// wire.Encoded, so a server must use wire.ServerCodec to send it.
type encodedResponse struct {
	raw []byte
}

// EncodedParts is the response's encoding: the field header, then the stored block.
func (r *encodedResponse) EncodedParts() mem.BufferSlice {
	hdr := protowire.AppendTag(make([]byte, 0, 1+protowire.SizeVarint(uint64(len(r.raw)))), blockField, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(len(r.raw)))
	return mem.BufferSlice{mem.SliceBuffer(hdr), mem.SliceBuffer(r.raw)}
}

// A rename of EncodedParts would make gRPC hand the response to protobuf, which cannot
// encode it; this keeps that a build error.
var _ wire.Encoded = (*encodedResponse)(nil)
