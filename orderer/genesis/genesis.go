// Package genesis builds channel configuration with fabric-config: the
// system channel genesis block that bootstraps a Kafka orderer, the
// CONFIG_UPDATE envelope that `peer channel create` sends, and the full
// config of a new application channel. It owns the mapping from a small
// Profile (what configtxgen's configtx.yaml profile would say) to Fabric's
// config tree, including the policy defaults of Fabric's sample
// configuration; it does not validate or apply config updates.
package genesis

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-config/configtx/orderer"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// Defaults applied to zero Profile fields. The batch values are
// configtxgen's own defaults, so a bare profile behaves like a bare
// configtx.yaml.
const (
	DefaultSystemChannelID   = "syschannel"
	DefaultConsortium        = "SampleConsortium"
	DefaultBatchTimeout      = 2 * time.Second
	DefaultMaxMessageCount   = 500
	DefaultAbsoluteMaxBytes  = 10 * 1024 * 1024
	DefaultPreferredMaxBytes = 2 * 1024 * 1024
	// CapabilityV2_0 is the capability level set on the channel, orderer
	// and (by default) application groups.
	CapabilityV2_0 = "V2_0"
)

// OrgSpec names an organization and where its verifying MSP lives.
type OrgSpec struct {
	Name   string // config group name
	ID     string // MSP ID
	MSPDir string // verifying MSP directory (cacerts, admincerts, tlscacerts, config.yaml)
	// Endpoints are the orderer endpoints (host:port) of an orderer
	// organization; Fabric ≥1.4 requires at least one per orderer org.
	Endpoints []string
	// Policies replaces the default organization policies when non-nil.
	Policies map[string]configtx.Policy
}

// Profile is the input of every builder here, the equivalent of one
// configtxgen profile for a Kafka network.
type Profile struct {
	ChannelID         string // system channel ID
	Brokers           []string
	BatchTimeout      time.Duration
	MaxMessageCount   uint32
	AbsoluteMaxBytes  uint32
	PreferredMaxBytes uint32
	MaxChannels       uint64 // 0 means unlimited
	OrdererOrgs       []OrgSpec
	ConsortiumOrgs    []OrgSpec
	Consortium        string
	// ApplicationCapabilities defaults to V2_0.
	ApplicationCapabilities []string
}

// DevProfile describes the network in a tree written by mspgen.Generate:
// every orderer organization of spec (the first one gets ordererEndpoints)
// and every peer organization in the consortium, with default batch values.
func DevProfile(cryptoRoot string, spec mspgen.Spec, brokers, ordererEndpoints []string) Profile {
	p := Profile{Brokers: brokers}
	for i, o := range spec.OrdererOrgs {
		org := OrgSpec{Name: o.Name, ID: o.MSPID, MSPDir: mspgen.OrgMSPDir(mspgen.OrdererOrgDir(cryptoRoot, o.Domain))}
		if i == 0 {
			org.Endpoints = ordererEndpoints
		}
		p.OrdererOrgs = append(p.OrdererOrgs, org)
	}
	for _, o := range spec.PeerOrgs {
		p.ConsortiumOrgs = append(p.ConsortiumOrgs, OrgSpec{
			Name: o.Name, ID: o.MSPID, MSPDir: mspgen.OrgMSPDir(mspgen.PeerOrgDir(cryptoRoot, o.Domain)),
		})
	}
	return p
}

func (p Profile) withDefaults() Profile {
	if p.ChannelID == "" {
		p.ChannelID = DefaultSystemChannelID
	}
	if p.Consortium == "" {
		p.Consortium = DefaultConsortium
	}
	if p.BatchTimeout == 0 {
		p.BatchTimeout = DefaultBatchTimeout
	}
	if p.MaxMessageCount == 0 {
		p.MaxMessageCount = DefaultMaxMessageCount
	}
	if p.AbsoluteMaxBytes == 0 {
		p.AbsoluteMaxBytes = DefaultAbsoluteMaxBytes
	}
	if p.PreferredMaxBytes == 0 {
		p.PreferredMaxBytes = DefaultPreferredMaxBytes
	}
	if len(p.ApplicationCapabilities) == 0 {
		p.ApplicationCapabilities = []string{CapabilityV2_0}
	}
	return p
}

func implicit(rule string) configtx.Policy {
	return configtx.Policy{Type: configtx.ImplicitMetaPolicyType, Rule: rule}
}

// standardPolicies are the Readers/Writers/Admins implicit-meta policies
// configtxgen's sample puts on the channel and on each section.
func standardPolicies() map[string]configtx.Policy {
	return map[string]configtx.Policy{
		configtx.ReadersPolicyKey: implicit("ANY Readers"),
		configtx.WritersPolicyKey: implicit("ANY Writers"),
		configtx.AdminsPolicyKey:  implicit("MAJORITY Admins"),
	}
}

func (p Profile) ordererSection() (configtx.Orderer, error) {
	if len(p.Brokers) == 0 {
		return configtx.Orderer{}, errors.New("orderer section: no Kafka brokers")
	}
	if p.PreferredMaxBytes > p.AbsoluteMaxBytes {
		return configtx.Orderer{}, fmt.Errorf("orderer section: PreferredMaxBytes %d exceeds AbsoluteMaxBytes %d", p.PreferredMaxBytes, p.AbsoluteMaxBytes)
	}
	if len(p.OrdererOrgs) == 0 {
		return configtx.Orderer{}, errors.New("orderer section: no orderer organization")
	}
	policies := standardPolicies()
	policies[configtx.BlockValidationPolicyKey] = implicit("ANY Writers")
	o := configtx.Orderer{
		OrdererType:  orderer.ConsensusTypeKafka,
		BatchTimeout: p.BatchTimeout,
		BatchSize: orderer.BatchSize{
			MaxMessageCount:   p.MaxMessageCount,
			AbsoluteMaxBytes:  p.AbsoluteMaxBytes,
			PreferredMaxBytes: p.PreferredMaxBytes,
		},
		Kafka:        orderer.Kafka{Brokers: append([]string(nil), p.Brokers...)},
		MaxChannels:  p.MaxChannels,
		Capabilities: []string{CapabilityV2_0},
		Policies:     policies,
		State:        orderer.ConsensusStateNormal,
	}
	for _, spec := range p.OrdererOrgs {
		if len(spec.Endpoints) == 0 {
			return configtx.Orderer{}, fmt.Errorf("orderer organization %s has no endpoints", spec.Name)
		}
		org, err := buildOrg(spec, false)
		if err != nil {
			return configtx.Orderer{}, err
		}
		org.OrdererEndpoints = append([]string(nil), spec.Endpoints...)
		o.Organizations = append(o.Organizations, org)
	}
	return o, nil
}

func buildOrg(spec OrgSpec, application bool) (configtx.Organization, error) {
	org, err := OrgFromMSPDir(spec.Name, spec.ID, spec.MSPDir)
	if err != nil {
		return configtx.Organization{}, err
	}
	switch {
	case spec.Policies != nil:
		org.Policies = spec.Policies
	case application && org.MSP.NodeOUs.Enable:
		org.Policies = ApplicationOrgPolicies(spec.ID)
	case application:
		org.Policies = memberApplicationOrgPolicies(spec.ID)
	}
	return org, nil
}

func (p Profile) consortiumOrgs() ([]configtx.Organization, error) {
	orgs := make([]configtx.Organization, 0, len(p.ConsortiumOrgs))
	for _, spec := range p.ConsortiumOrgs {
		org, err := buildOrg(spec, true)
		if err != nil {
			return nil, err
		}
		orgs = append(orgs, org)
	}
	return orgs, nil
}

func (p Profile) applicationSection() (configtx.Application, error) {
	orgs, err := p.consortiumOrgs()
	if err != nil {
		return configtx.Application{}, err
	}
	if len(orgs) == 0 {
		return configtx.Application{}, errors.New("application section: no consortium organization")
	}
	policies := standardPolicies()
	policies[configtx.EndorsementPolicyKey] = implicit("MAJORITY Endorsement")
	policies[configtx.LifecycleEndorsementPolicyKey] = implicit("MAJORITY Endorsement")
	return configtx.Application{
		Organizations: orgs,
		Capabilities:  append([]string(nil), p.ApplicationCapabilities...),
		Policies:      policies,
	}, nil
}

// SystemChannelBlock returns the genesis block of the Kafka system channel:
// orderer section, consortium of p.ConsortiumOrgs, channel policies and
// capabilities as configtxgen's sample profile sets them.
func SystemChannelBlock(p Profile) (*cb.Block, error) {
	p = p.withDefaults()
	ord, err := p.ordererSection()
	if err != nil {
		return nil, fmt.Errorf("system channel %s: %w", p.ChannelID, err)
	}
	orgs, err := p.consortiumOrgs()
	if err != nil {
		return nil, fmt.Errorf("system channel %s: consortium %s: %w", p.ChannelID, p.Consortium, err)
	}
	ch := configtx.Channel{
		Orderer:      ord,
		Consortiums:  []configtx.Consortium{{Name: p.Consortium, Organizations: orgs}},
		Capabilities: []string{CapabilityV2_0},
		Policies:     standardPolicies(),
	}
	block, err := configtx.NewSystemChannelGenesisBlock(ch, p.ChannelID)
	if err != nil {
		return nil, fmt.Errorf("system channel %s: %w", p.ChannelID, err)
	}
	return block, nil
}

// ChannelCreateTx returns the unsigned CONFIG_UPDATE envelope that creates
// channelID in p's consortium with p's consortium organizations, as
// `configtxgen -outputCreateChannelTx` writes it. Callers sign it (the
// ConfigUpdateEnvelope signatures and the envelope) before broadcasting.
func ChannelCreateTx(p Profile, channelID string) (*cb.Envelope, error) {
	p = p.withDefaults()
	app, err := p.applicationSection()
	if err != nil {
		return nil, fmt.Errorf("channel creation tx for %s: %w", channelID, err)
	}
	update, err := configtx.NewMarshaledCreateChannelTx(configtx.Channel{Consortium: p.Consortium, Application: app}, channelID)
	if err != nil {
		return nil, fmt.Errorf("channel creation tx for %s: %w", channelID, err)
	}
	env, err := configtx.NewEnvelope(update)
	if err != nil {
		return nil, fmt.Errorf("channel creation tx for %s: wrapping update: %w", channelID, err)
	}
	return env, nil
}

// ConfigFromBlock extracts the config from a config block: Data[0] must be
// an Envelope whose payload is of type CONFIG and carries a ConfigEnvelope.
func ConfigFromBlock(block *cb.Block) (*cb.Config, error) {
	if block == nil || block.Data == nil || len(block.Data.Data) == 0 {
		return nil, errors.New("config block has no data")
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(block.Data.Data[0], env); err != nil {
		return nil, fmt.Errorf("config block data[0] is not an envelope: %w", err)
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return nil, fmt.Errorf("config envelope payload does not parse: %w", err)
	}
	if payload.Header == nil {
		return nil, errors.New("config envelope payload has no header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, fmt.Errorf("config envelope channel header does not parse: %w", err)
	}
	if chdr.Type != int32(cb.HeaderType_CONFIG) {
		return nil, fmt.Errorf("config block data[0] has header type %s, want CONFIG", cb.HeaderType(chdr.Type))
	}
	ce := &cb.ConfigEnvelope{}
	if err := proto.Unmarshal(payload.Data, ce); err != nil {
		return nil, fmt.Errorf("config envelope does not parse: %w", err)
	}
	if ce.Config == nil || ce.Config.ChannelGroup == nil {
		return nil, errors.New("config envelope has no channel group")
	}
	return ce.Config, nil
}
