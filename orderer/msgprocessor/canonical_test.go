package msgprocessor

import (
	"bytes"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

// FuzzCanonicalEnvelope: whatever CanonicalEnvelope accepts decodes to an envelope with the
// payload and signature it returned, and that envelope encodes back to the same bytes.
// (orderer/chain's TestCanonicalEnvelope has the table of accepted and refused shapes.)
func FuzzCanonicalEnvelope(f *testing.F) {
	for _, s := range [][]byte{{0x0a, 1, 'p', 0x12, 1, 's'}, {0x12, 2, 'a', 'b'}, {0x0a, 0x81, 0x00}, {0x0a, 1, 'p', 0x1a, 1, 'x'}, nil} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		payload, sig, ok := CanonicalEnvelope(b)
		if !ok {
			return
		}
		env := &cb.Envelope{}
		if err := proto.Unmarshal(b, env); err != nil {
			t.Fatalf("accepted bytes do not decode: %v", err)
		}
		if !bytes.Equal(env.Payload, payload) || !bytes.Equal(env.Signature, sig) {
			t.Fatalf("split %x into %x and %x, decoding gives %x and %x", b, payload, sig, env.Payload, env.Signature)
		}
		again, err := proto.Marshal(env)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x (%v)", b, again, err)
		}
	})
}
