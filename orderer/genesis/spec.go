package genesis

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// Spec is the small YAML description of a Kafka network that `kordctl genesis` reads: the
// counterpart of a configtxgen profile, with only what a Kafka network needs.
//
//	systemChannel: syschannel
//	consortium: SampleConsortium
//	kafka:
//	  brokers: [kafka0:9092, kafka1:9092]
//	batch:
//	  timeout: 2s
//	  maxMessageCount: 10
//	  absoluteMaxBytes: 103809024
//	  preferredMaxBytes: 524288
//	maxChannels: 0
//	ordererOrgs:
//	  - {name: OrdererOrg, id: OrdererMSP, mspDir: crypto/ordererOrganizations/example.com/msp,
//	     endpoints: [orderer0.example.com:7050]}
//	orgs:
//	  - {name: Org1MSP, id: Org1MSP, mspDir: crypto/peerOrganizations/org1.example.com/msp}
//
// Relative MSP directories are relative to the spec file.
type Spec struct {
	SystemChannel string `yaml:"systemChannel"`
	Consortium    string `yaml:"consortium"`
	Kafka         struct {
		Brokers []string `yaml:"brokers"`
	} `yaml:"kafka"`
	Batch struct {
		Timeout           string `yaml:"timeout"`
		MaxMessageCount   uint32 `yaml:"maxMessageCount"`
		AbsoluteMaxBytes  uint32 `yaml:"absoluteMaxBytes"`
		PreferredMaxBytes uint32 `yaml:"preferredMaxBytes"`
	} `yaml:"batch"`
	MaxChannels uint64    `yaml:"maxChannels"`
	OrdererOrgs []SpecOrg `yaml:"ordererOrgs"`
	Orgs        []SpecOrg `yaml:"orgs"`
}

// SpecOrg is one organization of a Spec.
type SpecOrg struct {
	Name      string   `yaml:"name"`
	ID        string   `yaml:"id"`
	MSPDir    string   `yaml:"mspDir"`
	Endpoints []string `yaml:"endpoints,omitempty"`
}

// LoadSpec reads a Spec file and turns it into a Profile.
func LoadSpec(path string) (Profile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, fmt.Errorf("network spec: %w", err)
	}
	p, err := ParseSpec(raw, filepath.Dir(path))
	if err != nil {
		return Profile{}, fmt.Errorf("network spec %s: %w", path, err)
	}
	return p, nil
}

// ParseSpec parses a Spec; relative MSP directories are resolved against baseDir.
func ParseSpec(data []byte, baseDir string) (Profile, error) {
	var s Spec
	if err := yaml.Unmarshal(data, &s); err != nil {
		return Profile{}, err
	}
	p := Profile{
		ChannelID:         s.SystemChannel,
		Consortium:        s.Consortium,
		Brokers:           s.Kafka.Brokers,
		MaxMessageCount:   s.Batch.MaxMessageCount,
		AbsoluteMaxBytes:  s.Batch.AbsoluteMaxBytes,
		PreferredMaxBytes: s.Batch.PreferredMaxBytes,
		MaxChannels:       s.MaxChannels,
	}
	if s.Batch.Timeout != "" {
		d, err := time.ParseDuration(s.Batch.Timeout)
		if err != nil || d <= 0 {
			return Profile{}, fmt.Errorf("batch.timeout: %q is not a positive duration", s.Batch.Timeout)
		}
		p.BatchTimeout = d
	}
	if len(p.Brokers) == 0 {
		return Profile{}, fmt.Errorf("kafka.brokers: at least one broker is needed")
	}
	if len(s.OrdererOrgs) == 0 {
		return Profile{}, fmt.Errorf("ordererOrgs: at least one orderer organization is needed")
	}
	conv := func(key string, orgs []SpecOrg) ([]OrgSpec, error) {
		var out []OrgSpec
		for i, o := range orgs {
			if o.Name == "" || o.ID == "" || o.MSPDir == "" {
				return nil, fmt.Errorf("%s[%d]: name, id and mspDir are required", key, i)
			}
			dir := o.MSPDir
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(baseDir, dir)
			}
			out = append(out, OrgSpec{Name: o.Name, ID: o.ID, MSPDir: dir, Endpoints: o.Endpoints})
		}
		return out, nil
	}
	var err error
	if p.OrdererOrgs, err = conv("ordererOrgs", s.OrdererOrgs); err != nil {
		return Profile{}, err
	}
	if p.ConsortiumOrgs, err = conv("orgs", s.Orgs); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// SpecOf writes p back as a Spec (MSP directories as given), e.g. for `orderer dev` to leave a
// spec of the network it generated.
func SpecOf(p Profile) Spec {
	p = p.withDefaults()
	var s Spec
	s.SystemChannel, s.Consortium, s.MaxChannels = p.ChannelID, p.Consortium, p.MaxChannels
	s.Kafka.Brokers = p.Brokers
	s.Batch.Timeout = p.BatchTimeout.String()
	s.Batch.MaxMessageCount, s.Batch.AbsoluteMaxBytes, s.Batch.PreferredMaxBytes = p.MaxMessageCount, p.AbsoluteMaxBytes, p.PreferredMaxBytes
	for _, o := range p.OrdererOrgs {
		s.OrdererOrgs = append(s.OrdererOrgs, SpecOrg{Name: o.Name, ID: o.ID, MSPDir: o.MSPDir, Endpoints: o.Endpoints})
	}
	for _, o := range p.ConsortiumOrgs {
		s.Orgs = append(s.Orgs, SpecOrg{Name: o.Name, ID: o.ID, MSPDir: o.MSPDir})
	}
	return s
}
