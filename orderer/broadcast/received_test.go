package broadcast

import (
	"bytes"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

func TestReceived(t *testing.T) {
	canon, _ := proto.Marshal(&cb.Envelope{Payload: []byte("payload"), Signature: []byte("sig")})
	for _, tc := range []struct {
		name    string
		b       []byte
		raw     bool
		wantErr bool
	}{
		{"canonical", canon, true, false},
		{"empty (nothing to keep)", nil, false, false},
		{"fields reversed", []byte{0x12, 1, 's', 0x0a, 1, 'p'}, false, false},
		{"unknown field", []byte{0x0a, 1, 'p', 0x1a, 1, 'x'}, false, false},
		{"truncated", []byte{0x0a, 5, 'p'}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Received
			err := r.UnmarshalReceived(tc.b)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				return
			}
			if (r.Raw != nil) != tc.raw {
				t.Fatalf("raw kept: %v, want %v", r.Raw != nil, tc.raw)
			}
			want := &cb.Envelope{}
			_ = proto.Unmarshal(tc.b, want)
			if !bytes.Equal(r.Env.Payload, want.Payload) || !bytes.Equal(r.Env.Signature, want.Signature) {
				t.Fatalf("decoded %v, want %v", r.Env, want)
			}
		})
	}
}

// FuzzReceived: any bytes decode as proto.Unmarshal decodes them, and the bytes are kept
// only when they are what encoding the envelope gives.
func FuzzReceived(f *testing.F) {
	f.Add([]byte{0x0a, 1, 'p', 0x12, 1, 's'})
	f.Add([]byte{0x12, 1, 's', 0x0a, 1, 'p'})
	f.Add([]byte{0x0a, 0x81, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Received
		err := r.UnmarshalReceived(append([]byte(nil), b...))
		want := &cb.Envelope{}
		if wantErr := proto.Unmarshal(b, want); (err != nil) != (wantErr != nil) {
			t.Fatalf("error %v, proto.Unmarshal's %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(r.Env.Payload, want.Payload) || !bytes.Equal(r.Env.Signature, want.Signature) {
			t.Fatal("decoded envelope differs from proto.Unmarshal's")
		}
		if r.Raw != nil {
			again, _ := proto.Marshal(r.Env)
			if !bytes.Equal(again, r.Raw) {
				t.Fatalf("kept %x, which encodes as %x", r.Raw, again)
			}
		}
	})
}
