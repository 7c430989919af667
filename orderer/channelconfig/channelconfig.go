// Package channelconfig turns a channel's config tree (common.Config, as carried by a config
// block) into the typed values the ordering service runs on: consensus type, Kafka brokers,
// batch size and timeout, capabilities, config sequence, and the channel's MSPs and policies. It reads; it does not validate
// config updates (that belongs to the config-update path) and knows nothing of Kafka or gRPC.
package channelconfig

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/policy"
)

// Config tree keys, as Fabric names them.
const (
	OrdererGroup     = "Orderer"
	ApplicationGroup = "Application"
	ConsortiumsGroup = "Consortiums"

	ConsensusTypeKey = "ConsensusType"
	BatchSizeKey     = "BatchSize"
	BatchTimeoutKey  = "BatchTimeout"
	KafkaBrokersKey  = "KafkaBrokers"
	CapabilitiesKey  = "Capabilities"
	MSPKey           = "MSP"

	ChannelRestrictionsKey = "ChannelRestrictions"
)

// Values are the orderer-relevant settings of one config sequence of a channel.
type Values struct {
	ChannelID    string
	Sequence     uint64
	Consensus    string
	Brokers      []string
	BatchSize    ab.BatchSize
	BatchTimeout time.Duration
	// OrdererCapabilities and ChannelCapabilities are the capability names set to on.
	OrdererCapabilities map[string]bool
	ChannelCapabilities map[string]bool
	// ConsensusState is Orderer/ConsensusType's state (NORMAL unless in maintenance).
	ConsensusState ab.ConsensusType_State
	// MaxChannels is the system channel's Orderer/ChannelRestrictions MaxCount (0: no limit).
	MaxChannels uint64
	// OrgMSPIDs maps each organization group ("Application/Org1", "Orderer/OrdererOrg",
	// "Consortiums/SampleConsortium/Org1") to the MSP ID it defines.
	OrgMSPIDs map[string]string
	// System is true for a channel that carries a Consortiums group (the system channel).
	System bool
	// Policies are the channel's policies (nil only for configs built by hand in tests).
	Policies policy.Manager
	// MSPs are the channel's MSPs, which the policies deserialize identities with.
	MSPs *msp.Manager
	// Config is the tree these values were read from.
	Config *cb.Config
}

// Resubmission reports whether stale messages are re-validated and re-submitted with their
// original offset (orderer capability V1_1 or later), rather than re-validated in place.
func (v *Values) Resubmission() bool {
	for _, c := range []string{"V1_1", "V1_4_2", "V2_0"} {
		if v.OrdererCapabilities[c] {
			return true
		}
	}
	return false
}

// ExpirationCheck reports whether clients with expired certificates are refused (orderer
// capability V1_1 or later).
func (v *Values) ExpirationCheck() bool { return v.Resubmission() }

// FromBlock reads the config carried by a config block (its single CONFIG envelope).
func FromBlock(b *cb.Block) (*Values, error) {
	if b.GetData() == nil || len(b.Data.Data) != 1 {
		return nil, fmt.Errorf("config block %d: want exactly 1 data entry, have %d", b.GetHeader().GetNumber(), len(b.GetData().GetData()))
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(b.Data.Data[0], env); err != nil {
		return nil, fmt.Errorf("config block %d: envelope: %w", b.GetHeader().GetNumber(), err)
	}
	v, err := FromEnvelope(env)
	if err != nil {
		return nil, fmt.Errorf("config block %d: %w", b.GetHeader().GetNumber(), err)
	}
	return v, nil
}

// FromEnvelope reads a CONFIG envelope.
func FromEnvelope(env *cb.Envelope) (*Values, error) {
	ce, chdr, err := UnwrapConfigEnvelope(env)
	if err != nil {
		return nil, err
	}
	v, err := FromConfig(ce.Config)
	if err != nil {
		return nil, err
	}
	v.ChannelID = chdr.ChannelId
	return v, nil
}

// UnwrapConfigEnvelope extracts the ConfigEnvelope and channel header of a CONFIG envelope.
func UnwrapConfigEnvelope(env *cb.Envelope) (*cb.ConfigEnvelope, *cb.ChannelHeader, error) {
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.GetPayload(), payload); err != nil {
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	if payload.Header == nil {
		return nil, nil, errors.New("payload has no header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, nil, fmt.Errorf("channel header: %w", err)
	}
	if cb.HeaderType(chdr.Type) != cb.HeaderType_CONFIG {
		return nil, nil, fmt.Errorf("header type %s, want CONFIG", cb.HeaderType(chdr.Type))
	}
	ce := &cb.ConfigEnvelope{}
	if err := proto.Unmarshal(payload.Data, ce); err != nil {
		return nil, nil, fmt.Errorf("config envelope: %w", err)
	}
	if ce.Config == nil || ce.Config.ChannelGroup == nil {
		return nil, nil, errors.New("config envelope has no config")
	}
	return ce, chdr, nil
}

// FromConfig reads the values of a config tree.
func FromConfig(c *cb.Config) (*Values, error) {
	root := c.GetChannelGroup()
	if root == nil {
		return nil, errors.New("config has no channel group")
	}
	v := &Values{Sequence: c.Sequence, Config: c}
	caps := &cb.Capabilities{}
	if err := readValue(root, CapabilitiesKey, caps, false); err != nil {
		return nil, fmt.Errorf("channel group: %w", err)
	}
	v.ChannelCapabilities = capNames(caps)
	_, v.System = root.Groups[ConsortiumsGroup]

	ord, ok := root.Groups[OrdererGroup]
	if !ok {
		return nil, errors.New("config has no Orderer group")
	}
	ct := &ab.ConsensusType{}
	if err := readValue(ord, ConsensusTypeKey, ct, true); err != nil {
		return nil, fmt.Errorf("orderer group: %w", err)
	}
	v.Consensus = ct.Type
	v.ConsensusState = ct.State
	cr := &ab.ChannelRestrictions{}
	if err := readValue(ord, ChannelRestrictionsKey, cr, false); err != nil {
		return nil, fmt.Errorf("orderer group: %w", err)
	}
	v.MaxChannels = cr.MaxCount
	if err := readValue(ord, BatchSizeKey, &v.BatchSize, true); err != nil {
		return nil, fmt.Errorf("orderer group: %w", err)
	}
	if v.BatchSize.MaxMessageCount == 0 {
		return nil, errors.New("value Orderer/BatchSize: MaxMessageCount is 0")
	}
	if v.BatchSize.AbsoluteMaxBytes == 0 {
		return nil, errors.New("value Orderer/BatchSize: AbsoluteMaxBytes is 0")
	}
	if v.BatchSize.PreferredMaxBytes > v.BatchSize.AbsoluteMaxBytes {
		return nil, fmt.Errorf("value Orderer/BatchSize: PreferredMaxBytes %d is above AbsoluteMaxBytes %d", v.BatchSize.PreferredMaxBytes, v.BatchSize.AbsoluteMaxBytes)
	}
	bt := &ab.BatchTimeout{}
	if err := readValue(ord, BatchTimeoutKey, bt, true); err != nil {
		return nil, fmt.Errorf("orderer group: %w", err)
	}
	d, err := time.ParseDuration(bt.Timeout)
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("value Orderer/BatchTimeout: %q is not a positive duration", bt.Timeout)
	}
	v.BatchTimeout = d
	kb := &ab.KafkaBrokers{}
	if err := readValue(ord, KafkaBrokersKey, kb, false); err != nil {
		return nil, fmt.Errorf("orderer group: %w", err)
	}
	v.Brokers = kb.Brokers
	ocaps := &cb.Capabilities{}
	if err := readValue(ord, CapabilitiesKey, ocaps, false); err != nil {
		return nil, fmt.Errorf("orderer group: %w", err)
	}
	v.OrdererCapabilities = capNames(ocaps)
	if v.OrgMSPIDs, err = orgMSPIDs(root); err != nil {
		return nil, err
	}
	// Every config gets its own MSPs and policies: identities validated under one config
	// sequence are never trusted under the next.
	mspMgr, err := msp.ManagerFromConfig(root)
	if err != nil {
		return nil, fmt.Errorf("MSPs: %w", err)
	}
	if v.Policies, err = policy.NewManager(root, mspMgr); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	v.MSPs = mspMgr
	return v, nil
}

// RequireKafka returns an error unless the channel orders through Kafka.
func (v *Values) RequireKafka() error {
	if v.Consensus != "kafka" {
		return fmt.Errorf("channel %q: Orderer/ConsensusType is %q; kord orders through Kafka only (ConsensusType kafka)", v.ChannelID, v.Consensus)
	}
	if len(v.Brokers) == 0 {
		return fmt.Errorf("channel %q: Orderer/KafkaBrokers is empty", v.ChannelID)
	}
	return nil
}

func readValue(g *cb.ConfigGroup, key string, into proto.Message, required bool) error {
	cv, ok := g.Values[key]
	if !ok {
		if required {
			return fmt.Errorf("missing value %s", key)
		}
		return nil
	}
	if err := proto.Unmarshal(cv.Value, into); err != nil {
		return fmt.Errorf("value %s: %w", key, err)
	}
	return nil
}

func capNames(c *cb.Capabilities) map[string]bool {
	out := make(map[string]bool, len(c.Capabilities))
	for k := range c.Capabilities {
		out[k] = true
	}
	return out
}

// orgMSPIDs reads the MSP ID of every organization group.
func orgMSPIDs(root *cb.ConfigGroup) (map[string]string, error) {
	out := map[string]string{}
	read := func(path string, g *cb.ConfigGroup) error {
		cv, ok := g.Values[MSPKey]
		if !ok {
			return nil
		}
		mc := &mspproto.MSPConfig{}
		if err := proto.Unmarshal(cv.Value, mc); err != nil {
			return fmt.Errorf("value %s/MSP: %w", path, err)
		}
		if mc.Type != 0 {
			return nil // not an X.509 MSP; identified by its own config
		}
		fc := &mspproto.FabricMSPConfig{}
		if err := proto.Unmarshal(mc.Config, fc); err != nil {
			return fmt.Errorf("value %s/MSP: %w", path, err)
		}
		out[path] = fc.Name
		return nil
	}
	for _, top := range []string{OrdererGroup, ApplicationGroup} {
		for name, g := range root.Groups[top].GetGroups() {
			if err := read(top+"/"+name, g); err != nil {
				return nil, err
			}
		}
	}
	for cname, c := range root.Groups[ConsortiumsGroup].GetGroups() {
		for name, g := range c.GetGroups() {
			if err := read(ConsortiumsGroup+"/"+cname+"/"+name, g); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
