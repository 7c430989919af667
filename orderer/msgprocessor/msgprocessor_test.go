package msgprocessor

import (
	"bytes"
	"errors"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/protobuf/encoding/protowire"

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

// FuzzParse runs the envelope, payload and header parsers on arbitrary bytes, then the whole
// filter chain: under a hand-built config with a stub verifier, and under a real channel
// config (real MSPs and policies), where no payload but the one really signed is admitted.
func FuzzParse(f *testing.F) {
	good := envelope(f, cb.HeaderType_ENDORSER_TRANSACTION, []byte("me"), 10)
	f.Add(good.Payload, good.Signature)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00}, []byte{1})
	real, signed := realChannel(f, 64)
	f.Add(signed.Payload, signed.Signature)
	cfg := &channelconfig.Values{BatchSize: ab.BatchSize{AbsoluteMaxBytes: 1 << 20}}
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		env := &cb.Envelope{Payload: payload, Signature: sig}
		checkPayloadHeader(t, payload)
		_, _ = Parse(env)
		_ = (&Processor{Verifier: verifier{}}).ValidateNormal(cfg, env)
		err := (&Processor{}).ValidateNormal(real, env)
		if err == nil && !bytes.Equal(payload, signed.Payload) {
			// Other encodings of the seed's signature may pass (as in Fabric), but no payload
			// other than the one User1 signed can.
			t.Fatalf("envelope with a payload nobody signed admitted under the real channel config")
		}
	})
}

// checkPayloadHeader requires payloadHeader to read b exactly as proto.Unmarshal reads it
// into a common.Payload.
func checkPayloadHeader(t *testing.T, b []byte) {
	t.Helper()
	got, err := payloadHeader(b)
	want := &cb.Payload{}
	werr := proto.Unmarshal(b, want)
	if (err == nil) != (werr == nil) {
		t.Fatalf("payloadHeader(%x): error %v, proto.Unmarshal: %v", b, err, werr)
	}
	if err != nil {
		return
	}
	if (got == nil) != (want.Header == nil) || got != nil && !proto.Equal(got, want.Header) {
		t.Fatalf("payloadHeader(%x) = %v, proto.Unmarshal: %v", b, got, want.Header)
	}
}

func TestPayloadHeaderMatchesProto(t *testing.T) {
	hdr := func(ch, sh string) []byte {
		b, _ := proto.Marshal(&cb.Header{ChannelHeader: []byte(ch), SignatureHeader: []byte(sh)})
		return b
	}
	field := func(num protowire.Number, typ protowire.Type, v []byte) []byte {
		b := protowire.AppendTag(nil, num, typ)
		switch typ {
		case protowire.BytesType:
			return protowire.AppendBytes(b, v)
		case protowire.VarintType:
			return protowire.AppendVarint(b, 7)
		}
		return append(b, v...)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, b := range map[string][]byte{
		"empty":                      nil,
		"header and data":            cat(field(1, protowire.BytesType, hdr("c", "s")), field(2, protowire.BytesType, make([]byte, 100))),
		"data before header":         cat(field(2, protowire.BytesType, []byte("d")), field(1, protowire.BytesType, hdr("c", "s"))),
		"header twice, merged":       cat(field(1, protowire.BytesType, hdr("c", "")), field(1, protowire.BytesType, hdr("", "s"))),
		"header three times":         cat(field(1, protowire.BytesType, hdr("a", "")), field(1, protowire.BytesType, hdr("b", "")), field(1, protowire.BytesType, hdr("", "s"))),
		"header as a varint":         field(1, protowire.VarintType, nil),
		"data as a varint":           cat(field(1, protowire.BytesType, hdr("c", "s")), field(2, protowire.VarintType, nil)),
		"unknown field":              cat(field(9, protowire.BytesType, []byte("x")), field(1, protowire.BytesType, hdr("c", "s"))),
		"group":                      cat(protowire.AppendTag(nil, 5, protowire.StartGroupType), protowire.AppendTag(nil, 5, protowire.EndGroupType)),
		"stray end group":            protowire.AppendTag(nil, 5, protowire.EndGroupType),
		"field number 0":             {0x02, 0x00},
		"field number above the max": protowire.AppendBytes(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3|2), nil),
		"truncated":                  field(1, protowire.BytesType, hdr("c", "s"))[:4],
		"malformed header":           field(1, protowire.BytesType, []byte{0x0a, 0x05}),
		// A fixed64 cut across two occurrences: well-formed only when they are concatenated.
		"fixed64 split across headers": cat(field(1, protowire.BytesType, []byte("00000000001000000")), field(1, protowire.BytesType, []byte("00"))),
	} {
		t.Run(name, func(t *testing.T) { checkPayloadHeader(t, b) })
	}
}
