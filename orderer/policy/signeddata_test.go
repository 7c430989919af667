package policy

import (
	"bytes"
	"strings"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go/common"
)

func TestEnvelopeSignedData(t *testing.T) {
	creator := serialize("Org1MSP/alice")
	shdr := mustMarshal(t, &cb.SignatureHeader{Creator: creator, Nonce: []byte("nonce")})
	payload := mustMarshal(t, &cb.Payload{Header: &cb.Header{ChannelHeader: []byte("ch"), SignatureHeader: shdr}, Data: []byte("data")})
	env := &cb.Envelope{Payload: payload, Signature: []byte("sig")}
	sd, err := EnvelopeSignedData(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd) != 1 || !bytes.Equal(sd[0].Data, payload) || !bytes.Equal(sd[0].Identity, creator) || !bytes.Equal(sd[0].Signature, []byte("sig")) {
		t.Fatalf("signed data = %+v", sd)
	}

	// No signature header at all: no error, no identity (the policy then refuses it).
	payload = mustMarshal(t, &cb.Payload{Header: &cb.Header{ChannelHeader: []byte("ch")}})
	sd, err = EnvelopeSignedData(&cb.Envelope{Payload: payload})
	if err != nil || len(sd) != 1 || sd[0].Identity != nil {
		t.Fatalf("empty signature header: %+v, %v", sd, err)
	}

	for _, tc := range []struct {
		name string
		env  *cb.Envelope
		want string
	}{
		{"nil", nil, "nil envelope"},
		{"garbage payload", &cb.Envelope{Payload: []byte{0xff}}, "unmarshalling envelope payload"},
		{"no header", &cb.Envelope{Payload: mustMarshal(t, &cb.Payload{Data: []byte("x")})}, "no header"},
		{"garbage signature header", &cb.Envelope{Payload: mustMarshal(t, &cb.Payload{Header: &cb.Header{SignatureHeader: []byte{0xff}}})}, "unmarshalling signature header"},
	} {
		if _, err := EnvelopeSignedData(tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestConfigUpdateSignedData(t *testing.T) {
	update := []byte("config update bytes")
	h1 := mustMarshal(t, &cb.SignatureHeader{Creator: serialize("Org1MSP/root/admin"), Nonce: []byte("n1")})
	h2 := mustMarshal(t, &cb.SignatureHeader{Creator: serialize("Org2MSP/root/admin"), Nonce: []byte("n2")})
	cue := &cb.ConfigUpdateEnvelope{ConfigUpdate: update, Signatures: []*cb.ConfigSignature{
		{SignatureHeader: h1, Signature: []byte("s1")},
		{SignatureHeader: h2, Signature: []byte("s2")},
	}}
	sd, err := ConfigUpdateSignedData(cue)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd) != 2 {
		t.Fatalf("%d signed data", len(sd))
	}
	for i, h := range [][]byte{h1, h2} {
		want := append(append([]byte{}, h...), update...)
		if !bytes.Equal(sd[i].Data, want) {
			t.Errorf("%d: data is not signature header ‖ config update", i)
		}
		if string(sd[i].Signature) != []string{"s1", "s2"}[i] {
			t.Errorf("%d: signature %q", i, sd[i].Signature)
		}
	}
	if !bytes.Equal(sd[1].Identity, serialize("Org2MSP/root/admin")) {
		t.Error("identity is not the header's creator")
	}
	// The data of one signature does not alias the header or the update.
	sd[0].Data[0] ^= 1
	if h1[0] == sd[0].Data[0] {
		t.Error("data aliases the signature header")
	}

	if sd, err := ConfigUpdateSignedData(&cb.ConfigUpdateEnvelope{ConfigUpdate: update}); err != nil || len(sd) != 0 {
		t.Fatalf("no signatures: %v, %v", sd, err)
	}
	for _, tc := range []struct {
		name string
		cue  *cb.ConfigUpdateEnvelope
		want string
	}{
		{"nil", nil, "nil ConfigUpdateEnvelope"},
		{"nil signature", &cb.ConfigUpdateEnvelope{Signatures: []*cb.ConfigSignature{nil}}, "config signature 0 is nil"},
		{"garbage header", &cb.ConfigUpdateEnvelope{Signatures: []*cb.ConfigSignature{{SignatureHeader: h1}, {SignatureHeader: []byte{0xff}}}}, "config signature 1"},
	} {
		if _, err := ConfigUpdateSignedData(tc.cue); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// End to end: a config update signed by both org admins satisfies the channel's
// /Channel/Application/Admins (MAJORITY of 2).
func TestConfigUpdateAgainstAdmins(t *testing.T) {
	msps := newFakeMSPs("OrdererMSP", "Org1MSP", "Org2MSP")
	tree, err := NewManager(appChannel(t), msps)
	if err != nil {
		t.Fatal(err)
	}
	update := []byte("update")
	sign := func(spec, name string) *cb.ConfigSignature {
		h := mustMarshal(t, &cb.SignatureHeader{Creator: serialize(spec), Nonce: []byte(spec)})
		msp, _, _ := strings.Cut(spec, "/")
		return &cb.ConfigSignature{SignatureHeader: h, Signature: fakeSign(msp, name, append(append([]byte{}, h...), update...))}
	}
	p, _ := tree.GetPolicy(ChannelApplicationAdmin)
	one := &cb.ConfigUpdateEnvelope{ConfigUpdate: update, Signatures: []*cb.ConfigSignature{sign("Org1MSP/root/admin", "root")}}
	both := &cb.ConfigUpdateEnvelope{ConfigUpdate: update, Signatures: append(one.Signatures, sign("Org2MSP/root/admin", "root"))}
	sd, err := ConfigUpdateSignedData(one)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EvaluateSignedData(sd); err == nil {
		t.Fatal("one admin of two satisfied MAJORITY Admins")
	}
	sd, err = ConfigUpdateSignedData(both)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EvaluateSignedData(sd); err != nil {
		t.Fatal(err)
	}
}
