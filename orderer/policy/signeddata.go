package policy

import (
	"errors"
	"fmt"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

// EnvelopeSignedData is the one signature of an envelope: the creator of its payload's
// SignatureHeader signed the payload bytes.
//
// As in Fabric, only a payload without a header is an error; a header whose SignatureHeader is
// empty yields a SignedData without identity, which every policy then skips (the deserializer
// refuses it), so the request is refused by the policy rather than here.
func EnvelopeSignedData(env *cb.Envelope) ([]*SignedData, error) {
	if env == nil {
		return nil, errors.New("no signatures in a nil envelope")
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return nil, fmt.Errorf("unmarshalling envelope payload: %w", err)
	}
	if payload.Header == nil {
		return nil, errors.New("envelope payload has no header")
	}
	shdr := &cb.SignatureHeader{}
	if err := proto.Unmarshal(payload.Header.SignatureHeader, shdr); err != nil {
		return nil, fmt.Errorf("unmarshalling signature header: %w", err)
	}
	return []*SignedData{{
		Data:      env.Payload,
		Identity:  shdr.Creator,
		Signature: env.Signature,
	}}, nil
}

// ConfigUpdateSignedData lists the signatures of a config update: each ConfigSignature's
// creator signed its own signature header followed by the config update bytes. A signature
// header that does not unmarshal makes the whole set an error, as in Fabric.
func ConfigUpdateSignedData(cue *cb.ConfigUpdateEnvelope) ([]*SignedData, error) {
	if cue == nil {
		return nil, errors.New("no signatures in a nil ConfigUpdateEnvelope")
	}
	out := make([]*SignedData, len(cue.Signatures))
	for i, cs := range cue.Signatures {
		if cs == nil {
			return nil, fmt.Errorf("config signature %d is nil", i)
		}
		shdr := &cb.SignatureHeader{}
		if err := proto.Unmarshal(cs.SignatureHeader, shdr); err != nil {
			return nil, fmt.Errorf("unmarshalling signature header of config signature %d: %w", i, err)
		}
		data := make([]byte, 0, len(cs.SignatureHeader)+len(cue.ConfigUpdate))
		data = append(data, cs.SignatureHeader...)
		data = append(data, cue.ConfigUpdate...)
		out[i] = &SignedData{Data: data, Identity: shdr.Creator, Signature: cs.Signature}
	}
	return out, nil
}
