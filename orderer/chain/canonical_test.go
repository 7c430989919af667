package chain

import (
	"bytes"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

func TestCanonicalEnvelope(t *testing.T) {
	enc := func(e *cb.Envelope) []byte { b, _ := proto.Marshal(e); return b }
	big := bytes.Repeat([]byte{7}, 300)
	for _, tc := range []struct {
		name string
		p    []byte
		size uint32
		ok   bool
	}{
		{"both fields", enc(&cb.Envelope{Payload: big, Signature: []byte("sig")}), 303, true},
		{"payload only", enc(&cb.Envelope{Payload: []byte("p")}), 1, true},
		{"signature only", enc(&cb.Envelope{Signature: []byte("s")}), 1, true},
		{"empty", nil, 0, true},
		{"signature first", []byte{0x12, 1, 's', 0x0a, 1, 'p'}, 0, false},
		{"repeated payload", []byte{0x0a, 1, 'p', 0x0a, 1, 'q'}, 0, false},
		{"empty payload written out", []byte{0x0a, 0}, 0, false},
		{"padded length", []byte{0x0a, 0x81, 0x00, 'p'}, 0, false},
		{"unknown field", []byte{0x0a, 1, 'p', 0x1a, 1, 'x'}, 0, false},
		{"truncated", []byte{0x0a, 5, 'p'}, 0, false},
		{"bad varint", []byte{0x0a, 0x80}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, ok := canonicalEnvelope(tc.p)
			if ok != tc.ok || size != tc.size {
				t.Fatalf("got (%d, %v), want (%d, %v)", size, ok, tc.size, tc.ok)
			}
		})
	}
}
