// Package msgprocessor decides whether a message may enter a channel: it parses the envelope,
// classifies it by header type, and checks it against the channel's current config (size,
// creator signature). Its errors carry the class of refusal, which Broadcast turns into
// Fabric's statuses: ErrPermissionDenied becomes FORBIDDEN, ErrChannelNotFound NOT_FOUND,
// ErrUnavailable SERVICE_UNAVAILABLE, anything else BAD_REQUEST.
//
// Today the identity check is the creator's signature only; the full MSP and policy
// evaluation plugs in through the Verifier and Policy seams without changing callers.
package msgprocessor

import (
	"errors"
	"fmt"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/channelconfig"
)

// Refusal classes.
var (
	ErrBadRequest       = errors.New("bad request")
	ErrPermissionDenied = errors.New("permission denied")
	ErrChannelNotFound  = errors.New("channel not found")
	ErrUnavailable      = errors.New("service unavailable")
)

// Class is how a message is handled.
type Class int

// Message classes.
const (
	NormalMsg       Class = iota // ordered as is (ENDORSER_TRANSACTION and other types)
	ConfigUpdateMsg              // a CONFIG_UPDATE, turned into a CONFIG by the config path
	ConfigMsg                    // a CONFIG or ORDERER_TRANSACTION: produced only by orderers
)

// Verifier checks that sig is creator's signature over msg.
type Verifier interface {
	Verify(creator, msg, sig []byte) error
}

// Parsed is what ingress learned about an envelope.
type Parsed struct {
	ChannelHeader *cb.ChannelHeader
	Creator       []byte
	Class         Class
}

// Parse reads the headers of env and classifies it. It checks form only.
func Parse(env *cb.Envelope) (*Parsed, error) {
	if env == nil || len(env.Payload) == 0 {
		return nil, fmt.Errorf("%w: envelope has an empty payload", ErrBadRequest)
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return nil, fmt.Errorf("%w: payload is not a common.Payload: %v", ErrBadRequest, err)
	}
	if payload.Header == nil {
		return nil, fmt.Errorf("%w: payload has no header", ErrBadRequest)
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, fmt.Errorf("%w: channel header is malformed: %v", ErrBadRequest, err)
	}
	if len(payload.Header.SignatureHeader) == 0 {
		return nil, fmt.Errorf("%w: payload has no signature header", ErrPermissionDenied)
	}
	shdr := &cb.SignatureHeader{}
	if err := proto.Unmarshal(payload.Header.SignatureHeader, shdr); err != nil {
		return nil, fmt.Errorf("%w: signature header is malformed: %v", ErrBadRequest, err)
	}
	p := &Parsed{ChannelHeader: chdr, Creator: shdr.Creator}
	switch cb.HeaderType(chdr.Type) {
	case cb.HeaderType_CONFIG_UPDATE:
		p.Class = ConfigUpdateMsg
	case cb.HeaderType_CONFIG, cb.HeaderType_ORDERER_TRANSACTION:
		p.Class = ConfigMsg
	default:
		p.Class = NormalMsg
	}
	return p, nil
}

// Processor validates normal messages of one channel under a given config.
type Processor struct {
	Verifier Verifier
}

// ValidateNormal checks a normal message against cfg: Fabric's filters in Fabric's order
// (non-empty, size, then the creator's signature).
func (p *Processor) ValidateNormal(cfg *channelconfig.Values, env *cb.Envelope) error {
	parsed, err := Parse(env)
	if err != nil {
		return err
	}
	return p.validate(cfg, env, parsed)
}

func (p *Processor) validate(cfg *channelconfig.Values, env *cb.Envelope, parsed *Parsed) error {
	if parsed.Class == ConfigMsg {
		return fmt.Errorf("%w: %s messages are produced by orderers only", ErrBadRequest, cb.HeaderType(parsed.ChannelHeader.Type))
	}
	if size := uint32(len(env.Payload) + len(env.Signature)); size > cfg.BatchSize.AbsoluteMaxBytes {
		return fmt.Errorf("%w: message payload is %d bytes and exceeds maximum allowed %d bytes", ErrBadRequest, size, cfg.BatchSize.AbsoluteMaxBytes)
	}
	if len(parsed.Creator) == 0 {
		return fmt.Errorf("%w: signature header has no creator", ErrPermissionDenied)
	}
	if p.Verifier == nil {
		return fmt.Errorf("%w: no signature verifier configured", ErrUnavailable)
	}
	if err := p.Verifier.Verify(parsed.Creator, env.Payload, env.Signature); err != nil {
		return fmt.Errorf("%w: %v", ErrPermissionDenied, err)
	}
	return nil
}

// Check is ValidateNormal for a message Parse already read.
func (p *Processor) Check(cfg *channelconfig.Values, env *cb.Envelope, parsed *Parsed) error {
	return p.validate(cfg, env, parsed)
}
