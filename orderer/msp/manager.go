package msp

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/policy"
)

// Config tree names under which Fabric's channel configuration registers MSPs.
const (
	channelGroupName     = "Channel"
	ordererGroupKey      = "Orderer"
	applicationGroupKey  = "Application"
	consortiumsGroupKey  = "Consortiums"
	mspValueKey          = "MSP"
	capabilitiesValueKey = "Capabilities"
)

// Manager is the set of MSPs of one channel configuration. It routes a serialized
// identity to the MSP its MSP ID names and caches deserialized identities, with their
// validation outcome, keyed by the serialized bytes.
//
// A Manager belongs to one configuration: a config update builds a new Manager (with new
// MSPs), so cached identities never outlive the roots, CRLs and OU rules they were
// validated against. Safe for concurrent use.
type Manager struct {
	msps  map[string]*MSP
	cache *idCache
}

var (
	_ policy.Deserializer = (*Manager)(nil)
	_ Verifier            = (*Manager)(nil)
)

// NewManager groups MSPs; two MSPs with the same ID are an error.
func NewManager(msps ...*MSP) (*Manager, error) {
	mg := &Manager{msps: make(map[string]*MSP, len(msps)), cache: newIDCache(DefaultCacheSize)}
	for i, m := range msps {
		if m == nil {
			return nil, fmt.Errorf("MSP %d is nil", i)
		}
		if _, dup := mg.msps[m.id]; dup {
			return nil, fmt.Errorf("MSP ID %s is defined twice", m.id)
		}
		mg.msps[m.id] = m
	}
	return mg, nil
}

// mspSource is an MSP value found in the config tree, with where it was found.
type mspSource struct {
	path string
	conf *mspproto.MSPConfig
}

// ManagerFromConfig builds the Manager of a channel from its root config group (the
// "Channel" group of a Config): the MSP value of every organization of Channel/Orderer,
// Channel/Application and, on a system channel, of every consortium's organizations in
// Channel/Consortiums. The MSP version comes from the channel capabilities. One MSP ID may
// appear in several groups (an organization in two consortiums) only with the same
// configuration; otherwise it is an error, as in Fabric.
func ManagerFromConfig(root *cb.ConfigGroup) (*Manager, error) {
	if root == nil {
		return nil, errors.New("channel config group is nil")
	}
	version, err := configVersion(root)
	if err != nil {
		return nil, err
	}
	sources, err := collectMSPs(root)
	if err != nil {
		return nil, err
	}
	type defined struct {
		path string
		msp  *MSP
	}
	byID := make(map[string]defined)
	var msps []*MSP
	for _, src := range sources {
		m, err := reuseOrBuild(msps, src.conf, version)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.path, err)
		}
		if prev, ok := byID[m.id]; ok {
			if prev.msp != m {
				return nil, fmt.Errorf("MSP %s is defined differently in %s and %s", m.id, prev.path, src.path)
			}
			continue
		}
		byID[m.id] = defined{path: src.path, msp: m}
		msps = append(msps, m)
	}
	return NewManager(msps...)
}

// reuseOrBuild returns the MSP already built from an identical configuration, so an
// organization listed in several places is set up once.
func reuseOrBuild(built []*MSP, conf *mspproto.MSPConfig, v Version) (*MSP, error) {
	for _, m := range built {
		if m.config.Type == conf.Type && bytes.Equal(m.config.Config, conf.Config) {
			return m, nil
		}
	}
	return NewVersion(conf, v)
}

func configVersion(root *cb.ConfigGroup) (Version, error) {
	v, ok := root.Values[capabilitiesValueKey]
	if !ok || v == nil {
		return V1_0, nil
	}
	var caps cb.Capabilities
	if err := proto.Unmarshal(v.Value, &caps); err != nil {
		return 0, fmt.Errorf("%s/%s value does not parse: %w", channelGroupName, capabilitiesValueKey, err)
	}
	names := make(map[string]bool, len(caps.Capabilities))
	for name := range caps.Capabilities {
		names[name] = true
	}
	return VersionForCapabilities(names), nil
}

// collectMSPs walks the groups in a fixed order (sorted names) so that errors are
// reproducible.
func collectMSPs(root *cb.ConfigGroup) ([]mspSource, error) {
	var out []mspSource
	orgs := func(path string, g *cb.ConfigGroup) error {
		for _, name := range sortedGroups(g) {
			src, err := orgMSP(path+"/"+name, g.Groups[name])
			if err != nil {
				return err
			}
			out = append(out, src)
		}
		return nil
	}
	for _, key := range []string{ordererGroupKey, applicationGroupKey} {
		if g := root.Groups[key]; g != nil {
			if err := orgs(channelGroupName+"/"+key, g); err != nil {
				return nil, err
			}
		}
	}
	if cs := root.Groups[consortiumsGroupKey]; cs != nil {
		for _, name := range sortedGroups(cs) {
			if err := orgs(channelGroupName+"/"+consortiumsGroupKey+"/"+name, cs.Groups[name]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func sortedGroups(g *cb.ConfigGroup) []string {
	if g == nil {
		return nil
	}
	names := make([]string, 0, len(g.Groups))
	for name := range g.Groups {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func orgMSP(path string, org *cb.ConfigGroup) (mspSource, error) {
	if org == nil {
		return mspSource{}, fmt.Errorf("%s: organization group is nil", path)
	}
	v, ok := org.Values[mspValueKey]
	if !ok || v == nil {
		return mspSource{}, fmt.Errorf("%s: organization has no %s value", path, mspValueKey)
	}
	conf := &mspproto.MSPConfig{}
	if err := proto.Unmarshal(v.Value, conf); err != nil {
		return mspSource{}, fmt.Errorf("%s: %s value does not parse: %w", path, mspValueKey, err)
	}
	return mspSource{path: path, conf: conf}, nil
}

// DeserializeIdentity implements policy.Deserializer: the MSP named by the serialized
// identity's MSP ID deserializes it. Identities are cached with their validation outcome;
// parse failures are not cached, so garbage cannot evict the working set.
func (mg *Manager) DeserializeIdentity(serialized []byte) (policy.Identity, error) {
	id, err := mg.Deserialize(serialized)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// Deserialize is DeserializeIdentity with the concrete type.
func (mg *Manager) Deserialize(serialized []byte) (*X509Identity, error) {
	if mg == nil {
		return nil, errors.New("no MSP manager")
	}
	if id := mg.cache.get(serialized); id != nil {
		return id, nil
	}
	var sid mspproto.SerializedIdentity
	if err := proto.Unmarshal(serialized, &sid); err != nil {
		return nil, fmt.Errorf("not a serialized identity: %w", err)
	}
	m, ok := mg.msps[sid.Mspid]
	if !ok {
		return nil, fmt.Errorf("MSP ID %q is not defined on this channel", sid.Mspid)
	}
	id, err := m.identityFromBytes(sid.IdBytes)
	if err != nil {
		return nil, err
	}
	mg.cache.put(serialized, id)
	return id, nil
}

// Verify implements Verifier: creator (a marshalled SerializedIdentity) must be a valid
// member of the channel MSP it names and sig its signature over msg. This is membership,
// not a policy: which members may sign what is the policy package's business.
func (mg *Manager) Verify(creator, msg, sig []byte) error {
	id, err := mg.Deserialize(creator)
	if err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return err
	}
	return id.Verify(msg, sig)
}

// MSP returns the MSP with the given ID.
func (mg *Manager) MSP(id string) (*MSP, bool) {
	m, ok := mg.msps[id]
	return m, ok
}

// MSPs returns the channel's MSPs by ID (a copy).
func (mg *Manager) MSPs() map[string]*MSP {
	out := make(map[string]*MSP, len(mg.msps))
	for id, m := range mg.msps {
		out[id] = m
	}
	return out
}
