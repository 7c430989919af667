package msgprocessor

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/golang/protobuf/ptypes/timestamp"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/configtx"
)

// Signer is the orderer's identity, which signs the CONFIG and ORDERER_TRANSACTION envelopes
// it builds from config updates.
type Signer = client.Signer

// Supported capabilities: a config that requires any other is refused, since this orderer
// could not honour it (Fabric v2.5's orderer supports the same sets).
var (
	supportedChannelCaps = map[string]bool{"V1_1": true, "V1_3": true, "V1_4_2": true, "V1_4_3": true, "V2_0": true}
	supportedOrdererCaps = map[string]bool{"V1_1": true, "V1_4_2": true, "V2_0": true}
)

// ProcessConfigUpdate turns a CONFIG_UPDATE for an existing channel into the CONFIG envelope
// to order: the update must pass the channel's filters, apply to its current config
// (versions, mod_policies) and lead to a config this orderer can run; the result is signed by
// the orderer.
func (p *Processor) ProcessConfigUpdate(cfg *channelconfig.Values, env *cb.Envelope) (*cb.Envelope, error) {
	parsed, err := Parse(env)
	if err != nil {
		return nil, err
	}
	if err := p.admit(cfg, env, parsed); err != nil {
		return nil, fmt.Errorf("config update for channel %s did not pass the channel's checks: %w", cfg.ChannelID, err)
	}
	v, err := configtx.NewValidator(cfg.ChannelID, cfg.Config, cfg.Policies)
	if err != nil {
		return nil, fmt.Errorf("%w: channel %s: %v", ErrBadRequest, cfg.ChannelID, err)
	}
	ce, err := v.ProposeConfigUpdate(env)
	if err != nil {
		hint := ""
		if req, perr := configtx.ParseCreationRequest(env); perr == nil && req.Consortium != "" {
			hint = " (this looks like a channel-creation request, but the channel already exists)"
		}
		return nil, fmt.Errorf("%w: config update for channel %s cannot be applied: %v%s", ErrBadRequest, cfg.ChannelID, err, hint)
	}
	next, err := channelconfig.FromConfig(ce.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: config update for channel %s leads to an invalid config: %v", ErrBadRequest, cfg.ChannelID, err)
	}
	next.ChannelID = cfg.ChannelID
	if err := checkSuccessor(cfg, next); err != nil {
		return nil, fmt.Errorf("%w: config update for channel %s: %v", ErrBadRequest, cfg.ChannelID, err)
	}
	out, err := p.signedEnvelope(cb.HeaderType_CONFIG, cfg.ChannelID, ce)
	if err != nil {
		return nil, err
	}
	if err := p.checkSize(cfg, out); err != nil {
		return nil, fmt.Errorf("the config produced by the update: %w", err)
	}
	return out, nil
}

// ProcessChannelCreation turns a CONFIG_UPDATE for a channel that does not exist into the
// ORDERER_TRANSACTION to order on the system channel sys: the request is applied to the
// template Fabric builds from the consortium (whose ChannelCreationPolicy the request's
// signatures must satisfy), and the resulting CONFIG envelope, signed by the orderer, is
// wrapped in an ORDERER_TRANSACTION signed by the orderer. channels is how many channels
// exist (for the system channel's MaxChannels limit).
func (p *Processor) ProcessChannelCreation(sys *channelconfig.Values, env *cb.Envelope, channels int) (*cb.Envelope, error) {
	if !sys.System {
		return nil, fmt.Errorf("%w: channel %s is not a system channel", ErrBadRequest, sys.ChannelID)
	}
	req, err := configtx.ParseCreationRequest(env)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if max := sys.MaxChannels; max > 0 && uint64(channels) > max {
		return nil, fmt.Errorf("%w: creating channel %s would exceed the limit of %d channels (Orderer/ChannelRestrictions MaxCount of the system channel)", ErrBadRequest, req.ChannelID, max)
	}
	ce, err := p.newChannelConfig(sys, env, req)
	if err != nil {
		return nil, err
	}
	inner, err := p.signedEnvelope(cb.HeaderType_CONFIG, req.ChannelID, ce)
	if err != nil {
		return nil, err
	}
	out, err := p.signedEnvelope(cb.HeaderType_ORDERER_TRANSACTION, sys.ChannelID, inner)
	if err != nil {
		return nil, err
	}
	if err := p.checkSize(sys, out); err != nil {
		return nil, fmt.Errorf("the channel-creation transaction for %s: %w", req.ChannelID, err)
	}
	return out, nil
}

// newChannelConfig applies a creation request to its template and checks the result.
func (p *Processor) newChannelConfig(sys *channelconfig.Values, env *cb.Envelope, req *configtx.CreationRequest) (*cb.ConfigEnvelope, error) {
	tmpl, err := configtx.Template(sys.Config, sys.OrdererCapabilities, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	tv, err := channelconfig.FromConfig(tmpl)
	if err != nil {
		return nil, fmt.Errorf("%w: channel creation of %s: template config: %v", ErrBadRequest, req.ChannelID, err)
	}
	tv.ChannelID = req.ChannelID
	v, err := configtx.NewValidator(req.ChannelID, tmpl, tv.Policies)
	if err != nil {
		return nil, fmt.Errorf("%w: channel creation of %s: %v", ErrBadRequest, req.ChannelID, err)
	}
	ce, err := v.ProposeConfigUpdate(env)
	if err != nil {
		return nil, fmt.Errorf("%w: channel creation of %s refused: %v", ErrBadRequest, req.ChannelID, err)
	}
	next, err := channelconfig.FromConfig(ce.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: channel creation of %s leads to an invalid config: %v", ErrBadRequest, req.ChannelID, err)
	}
	next.ChannelID = req.ChannelID
	if err := checkSuccessor(sys, next); err != nil {
		return nil, fmt.Errorf("%w: channel creation of %s: %v", ErrBadRequest, req.ChannelID, err)
	}
	return ce, nil
}

// ReprocessConfig re-applies the update behind a config message that was validated under an
// older config sequence of cfg's channel: a CONFIG envelope's LastUpdate is applied to the
// current config; on the system channel, an ORDERER_TRANSACTION's channel creation is redone
// against the current system config. The result is a fresh envelope signed by this orderer.
func (p *Processor) ReprocessConfig(cfg *channelconfig.Values, env *cb.Envelope) (*cb.Envelope, error) {
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.GetPayload(), payload); err != nil {
		return nil, fmt.Errorf("config message: payload: %w", err)
	}
	if payload.Header == nil {
		return nil, errors.New("config message: payload has no header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, fmt.Errorf("config message: channel header: %w", err)
	}
	switch cb.HeaderType(chdr.Type) {
	case cb.HeaderType_CONFIG:
		ce := &cb.ConfigEnvelope{}
		if err := proto.Unmarshal(payload.Data, ce); err != nil {
			return nil, fmt.Errorf("config message: config envelope: %w", err)
		}
		if ce.LastUpdate == nil {
			return nil, errors.New("config message carries no config update to re-apply")
		}
		return p.ProcessConfigUpdate(cfg, ce.LastUpdate)
	case cb.HeaderType_ORDERER_TRANSACTION:
		if !cfg.System {
			return nil, fmt.Errorf("ORDERER_TRANSACTION on channel %s, which is not a system channel", cfg.ChannelID)
		}
		inner := &cb.Envelope{}
		if err := proto.Unmarshal(payload.Data, inner); err != nil {
			return nil, fmt.Errorf("ORDERER_TRANSACTION: inner envelope: %w", err)
		}
		ce, _, err := channelconfig.UnwrapConfigEnvelope(inner)
		if err != nil {
			return nil, fmt.Errorf("ORDERER_TRANSACTION: %w", err)
		}
		if ce.LastUpdate == nil {
			return nil, errors.New("ORDERER_TRANSACTION carries no channel-creation request to re-apply")
		}
		// The channel count does not change the decision here: the limit was checked when the
		// request was admitted, and Fabric does not re-check it on re-submission either.
		return p.ProcessChannelCreation(cfg, ce.LastUpdate, 0)
	default:
		return nil, fmt.Errorf("config message has header type %s", cb.HeaderType(chdr.Type))
	}
}

// checkSuccessor checks that next can follow prev on a channel this orderer runs (or, for a
// channel creation, be created next to the system channel prev).
func checkSuccessor(prev, next *channelconfig.Values) error {
	if next.Consensus != prev.Consensus {
		return fmt.Errorf("Orderer/ConsensusType cannot change from %q to %q: consensus-type migration is not supported by kord", prev.Consensus, next.Consensus)
	}
	if err := next.RequireKafka(); err != nil {
		return err
	}
	if next.ConsensusState != prev.ConsensusState {
		return fmt.Errorf("Orderer/ConsensusType state cannot change from %s to %s: maintenance mode is not supported by kord", prev.ConsensusState, next.ConsensusState)
	}
	for c := range next.ChannelCapabilities {
		if !supportedChannelCaps[c] {
			return fmt.Errorf("channel capability %s is required by the new config but not supported by this orderer", c)
		}
	}
	for c := range next.OrdererCapabilities {
		if !supportedOrdererCaps[c] {
			return fmt.Errorf("orderer capability %s is required by the new config but not supported by this orderer", c)
		}
	}
	for org, id := range prev.OrgMSPIDs {
		if nid, ok := next.OrgMSPIDs[org]; ok && nid != id {
			return fmt.Errorf("organization %s cannot change its MSP ID from %s to %s", org, id, nid)
		}
	}
	return nil
}

func (p *Processor) checkSize(cfg *channelconfig.Values, env *cb.Envelope) error {
	if size := uint32(len(env.Payload) + len(env.Signature)); size > cfg.BatchSize.AbsoluteMaxBytes {
		return fmt.Errorf("%w: it is %d bytes and exceeds the channel's AbsoluteMaxBytes of %d bytes", ErrBadRequest, size, cfg.BatchSize.AbsoluteMaxBytes)
	}
	return nil
}

func (p *Processor) signedEnvelope(t cb.HeaderType, channelID string, msg proto.Message) (*cb.Envelope, error) {
	if p.Signer == nil {
		return nil, fmt.Errorf("%w: this orderer has no signing identity for config transactions", ErrUnavailable)
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encoding %s for channel %s: %w", t, channelID, err)
	}
	env, err := ordererEnvelope(p.Signer, t, channelID, data)
	if err != nil {
		return nil, fmt.Errorf("signing %s for channel %s: %w", t, channelID, err)
	}
	return env, nil
}

// ordererEnvelope signs data as the orderer's own transaction. Its channel header is the one
// Fabric's orderer writes for these envelopes, so a peer sees the same shape whichever
// orderer of a mixed cluster built it: no transaction ID (config transactions are not
// indexed by one), message version and epoch 0, and a timestamp of whole seconds.
func ordererEnvelope(s Signer, t cb.HeaderType, channelID string, data []byte) (*cb.Envelope, error) {
	sh, err := s.NewSignatureHeader()
	if err != nil {
		return nil, err
	}
	return client.SignedEnvelope(s, &cb.ChannelHeader{
		Type:      int32(t),
		ChannelId: channelID,
		Timestamp: &timestamp.Timestamp{Seconds: time.Now().Unix()},
	}, sh, data)
}
