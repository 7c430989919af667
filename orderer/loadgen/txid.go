package loadgen

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers on the path Envelope.payload → Payload.header → Header.channel_header →
// ChannelHeader.tx_id (fabric-protos common/common.proto).
const (
	fieldEnvelopePayload     = 1
	fieldPayloadHeader       = 1
	fieldHeaderChannelHeader = 1
	fieldChannelHeaderTxID   = 5
)

// envelopeTxID reads the transaction ID of a marshalled envelope without unmarshalling the
// rest of it (the payload data is most of the bytes of a block). ok is false when the bytes
// are not an envelope with a channel header.
func envelopeTxID(env []byte) (string, bool) {
	b := env
	for _, step := range []struct {
		f     protowire.Number
		merge bool
	}{{fieldEnvelopePayload, false}, {fieldPayloadHeader, true}, {fieldHeaderChannelHeader, false}} {
		var ok bool
		if b, ok = bytesField(b, step.f, step.merge); !ok {
			return "", false
		}
	}
	id, ok := bytesField(b, fieldChannelHeaderTxID, false)
	if !ok {
		return "", false
	}
	return string(id), true
}

// bytesField returns length-delimited field num of the message b as proto unmarshalling
// sees it: the last occurrence of a bytes or string field, or all occurrences of a message
// field concatenated (which unmarshals as their merge).
func bytesField(b []byte, num protowire.Number, merge bool) ([]byte, bool) {
	var out []byte
	found := false
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil, false
			}
			if merge && found {
				out = append(append([]byte(nil), out...), v...)
			} else {
				out = v
			}
			found = true
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil, false
		}
		b = b[l:]
	}
	return out, found
}
