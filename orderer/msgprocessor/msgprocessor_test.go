package msgprocessor

import (
	"errors"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/channelconfig"
)

type verifier struct{ err error }

func (v verifier) Verify(_, _, _ []byte) error { return v.err }

func envelope(t testing.TB, ht cb.HeaderType, creator []byte, payloadSize int) *cb.Envelope {
	chdr, _ := proto.Marshal(&cb.ChannelHeader{Type: int32(ht), ChannelId: "ch"})
	var shdr []byte
	if creator != nil {
		shdr, _ = proto.Marshal(&cb.SignatureHeader{Creator: creator, Nonce: []byte("n")})
	}
	p, _ := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdr, SignatureHeader: shdr}, Data: make([]byte, payloadSize)})
	return &cb.Envelope{Payload: p, Signature: []byte("sig")}
}

func TestValidateNormal(t *testing.T) {
	cfg := &channelconfig.Values{BatchSize: ab.BatchSize{AbsoluteMaxBytes: 1000}}
	cases := []struct {
		name string
		env  *cb.Envelope
		v    Verifier
		want error
	}{
		{"good", envelope(t, cb.HeaderType_ENDORSER_TRANSACTION, []byte("me"), 10), verifier{}, nil},
		{"empty payload", &cb.Envelope{}, verifier{}, ErrBadRequest},
		{"garbage payload", &cb.Envelope{Payload: []byte{0xff, 0x01}}, verifier{}, ErrBadRequest},
		{"no header", &cb.Envelope{Payload: []byte{0x12, 0x01, 0x00}}, verifier{}, ErrBadRequest},
		{"too large", envelope(t, cb.HeaderType_ENDORSER_TRANSACTION, []byte("me"), 2000), verifier{}, ErrBadRequest},
		{"no signature header", envelope(t, cb.HeaderType_ENDORSER_TRANSACTION, nil, 10), verifier{}, ErrPermissionDenied},
		{"bad signature", envelope(t, cb.HeaderType_ENDORSER_TRANSACTION, []byte("me"), 10), verifier{errors.New("nope")}, ErrPermissionDenied},
		{"config from a client", envelope(t, cb.HeaderType_CONFIG, []byte("me"), 10), verifier{}, ErrBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := (&Processor{Verifier: tc.v}).ValidateNormal(cfg, tc.env)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for ht, want := range map[cb.HeaderType]Class{
		cb.HeaderType_ENDORSER_TRANSACTION: NormalMsg,
		cb.HeaderType_MESSAGE:              NormalMsg,
		cb.HeaderType_CONFIG_UPDATE:        ConfigUpdateMsg,
		cb.HeaderType_CONFIG:               ConfigMsg,
		cb.HeaderType_ORDERER_TRANSACTION:  ConfigMsg,
	} {
		p, err := Parse(envelope(t, ht, []byte("me"), 1))
		if err != nil || p.Class != want {
			t.Fatalf("%s: %v %v", ht, p, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	good := envelope(f, cb.HeaderType_ENDORSER_TRANSACTION, []byte("me"), 10)
	f.Add(good.Payload, good.Signature)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00}, []byte{1})
	cfg := &channelconfig.Values{BatchSize: ab.BatchSize{AbsoluteMaxBytes: 1 << 20}}
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		env := &cb.Envelope{Payload: payload, Signature: sig}
		_, _ = Parse(env)
		_ = (&Processor{Verifier: verifier{}}).ValidateNormal(cfg, env)
	})
}
