// Package msgprocessor decides whether a message may enter a channel: it parses the envelope,
// classifies it by header type, and checks it against the channel's current config (size,
// creator signature). Its errors carry the class of refusal, which Broadcast turns into
// Fabric's statuses: ErrPermissionDenied becomes FORBIDDEN, ErrChannelNotFound NOT_FOUND,
// ErrUnavailable SERVICE_UNAVAILABLE, anything else BAD_REQUEST.
//
// Config updates take the config path: ProcessConfigUpdate for an existing channel,
// ProcessChannelCreation for a new one (on the system channel), and ReprocessConfig when a
// config message validated under an older config sequence is consumed.
package msgprocessor

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/policy"
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
	header, err := payloadHeader(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not a common.Payload: %v", ErrBadRequest, err)
	}
	if header == nil {
		return nil, fmt.Errorf("%w: payload has no header", ErrBadRequest)
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(header.ChannelHeader, chdr); err != nil {
		return nil, fmt.Errorf("%w: channel header is malformed: %v", ErrBadRequest, err)
	}
	if len(header.SignatureHeader) == 0 {
		return nil, fmt.Errorf("%w: payload has no signature header", ErrPermissionDenied)
	}
	shdr := &cb.SignatureHeader{}
	if err := proto.Unmarshal(header.SignatureHeader, shdr); err != nil {
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

// payloadHeader decodes the Header of a marshalled common.Payload, nil if it has none, without
// copying the payload's data as proto.Unmarshal into a Payload would: ingress reads only the
// headers, and a transaction's data can be megabytes. It accepts and refuses exactly what
// proto.Unmarshal does: every field must be well-formed wire format, a field of the wrong wire
// type is an unknown field, and a Header present several times is merged, each occurrence
// decoded on its own. TestPayloadHeaderMatchesProto and FuzzParse hold it to that.
func payloadHeader(b []byte) (*cb.Header, error) {
	const headerField = 1
	var chunks [][]byte
	found := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			return nil, fmt.Errorf("field number %d out of range", num)
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		if num == headerField && typ != protowire.BytesType {
			// proto.Unmarshal (golang/protobuf with these APIv1 messages) allocates the
			// Header before it finds the wire type wrong and keeps the field as unknown.
			found = true
		}
		if num == headerField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			chunks, found = append(chunks, v), true
		}
		b = b[n:]
	}
	if !found {
		return nil, nil
	}
	// Each occurrence is decoded on its own and merged into the previous ones, as
	// proto.Unmarshal does: their concatenation can be well-formed when one of them is not
	// (a fixed64 cut across two occurrences), and proto refuses that payload.
	h := &cb.Header{}
	for _, c := range chunks {
		if err := proto.UnmarshalMerge(c, h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Processor validates the messages of a channel under a given config and turns config
// updates into the config messages that are ordered. It holds no per-channel state, so one
// Processor serves every channel.
type Processor struct {
	// Verifier checks creator signatures of channels whose config carries no policies; a
	// config read by channelconfig always does, so this is a fallback for hand-built configs.
	Verifier Verifier
	// Signer is the orderer's identity, which signs the config messages built here.
	Signer Signer
	// NoExpirationChecks turns off the refusal of expired creators
	// (General.Authentication.NoExpirationChecks).
	NoExpirationChecks bool
	// Now is the clock for expiration checks (time.Now if nil).
	Now func() time.Time
}

// ValidateNormal checks a normal message against cfg: Fabric's filters in Fabric's order.
func (p *Processor) ValidateNormal(cfg *channelconfig.Values, env *cb.Envelope) error {
	parsed, err := Parse(env)
	if err != nil {
		return err
	}
	return p.Check(cfg, env, parsed)
}

// Check is ValidateNormal for a message Parse already read.
func (p *Processor) Check(cfg *channelconfig.Values, env *cb.Envelope, parsed *Parsed) error {
	if parsed.Class != NormalMsg {
		return fmt.Errorf("%w: %s messages are produced by orderers only", ErrBadRequest, cb.HeaderType(parsed.ChannelHeader.Type))
	}
	return p.admit(cfg, env, parsed)
}

// admit runs the filters every client message passes, in Fabric's order: size, creator
// expiration, then the channel's Writers policy (which also checks the signature).
func (p *Processor) admit(cfg *channelconfig.Values, env *cb.Envelope, parsed *Parsed) error {
	if size := uint32(len(env.Payload) + len(env.Signature)); size > cfg.BatchSize.AbsoluteMaxBytes {
		return fmt.Errorf("%w: message payload is %d bytes and exceeds maximum allowed %d bytes", ErrBadRequest, size, cfg.BatchSize.AbsoluteMaxBytes)
	}
	if !p.NoExpirationChecks && cfg.ExpirationCheck() {
		if exp := creatorExpiresAt(cfg, parsed.Creator); !exp.IsZero() && p.now().After(exp) {
			return fmt.Errorf("%w: the creator's certificate expired at %s", ErrBadRequest, exp.UTC().Format(time.RFC3339))
		}
	}
	if len(parsed.Creator) == 0 {
		return fmt.Errorf("%w: signature header has no creator", ErrPermissionDenied)
	}
	if cfg.Policies != nil {
		pol, ok := cfg.Policies.GetPolicy(policy.ChannelWriters)
		if !ok {
			return fmt.Errorf("%w: channel %s has no %s policy", ErrPermissionDenied, cfg.ChannelID, policy.ChannelWriters)
		}
		sd := []*policy.SignedData{{Data: env.Payload, Identity: parsed.Creator, Signature: env.Signature}}
		if err := pol.EvaluateSignedData(sd); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrPermissionDenied, policy.ChannelWriters, err)
		}
		return nil
	}
	if p.Verifier == nil {
		return fmt.Errorf("%w: no signature verifier configured", ErrUnavailable)
	}
	if err := p.Verifier.Verify(parsed.Creator, env.Payload, env.Signature); err != nil {
		return fmt.Errorf("%w: %v", ErrPermissionDenied, err)
	}
	return nil
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// creatorExpiresAt is ExpiresAt without parsing the certificate again when the channel's MSP
// manager already holds the identity (it caches the identities it deserialized, so the
// certificate of a returning client is parsed once per config). A creator no MSP of the channel
// can read still has its certificate parsed here: Fabric checks expiry before membership, so
// an expired certificate of an unknown organization is BAD_REQUEST too.
func creatorExpiresAt(cfg *channelconfig.Values, creator []byte) time.Time {
	if cfg.MSPs != nil {
		if id, err := cfg.MSPs.Deserialize(creator); err == nil {
			return id.ExpiresAt()
		}
	}
	return ExpiresAt(creator)
}

// ExpiresAt is the NotAfter of the X.509 certificate in a serialized identity, or zero when
// there is none to read (identities that are not X.509 do not expire).
func ExpiresAt(creator []byte) time.Time {
	sid := &mspproto.SerializedIdentity{}
	if err := proto.Unmarshal(creator, sid); err != nil {
		return time.Time{}
	}
	block, _ := pem.Decode(sid.IdBytes)
	if block == nil {
		return time.Time{}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}
	}
	return cert.NotAfter
}
