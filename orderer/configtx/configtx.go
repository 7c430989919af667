// Package configtx owns config transactions: it validates a CONFIG_UPDATE against a channel's
// current config and computes the config it leads to, exactly as Fabric's config transaction
// validator does, and it builds the template config a channel-creation request is applied to.
//
// The model: a config tree is flattened into elements (groups, values, policies), each with a
// version and a mod_policy. An update carries a read set (elements and versions it depends on)
// and a write set. The elements of the write set whose version differs from the read set's are
// the delta; each must be exactly one version above the current element (or version 0 for a new
// element), and the current element's mod_policy must be satisfied by the update's signatures.
// The new config is the current one with the delta laid over it; a group in the delta brings
// its list of children with it, which is how elements are removed.
//
// Peers run the same rules on every config block they receive and compare the result with what
// the orderer wrote, so the output here must be the config Fabric would compute, not merely an
// equivalent one.
package configtx

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/policy"
)

// RootGroup is the name of a channel config's root group in paths ("/Channel/...").
const RootGroup = "Channel"

// MaxNameLength bounds channel IDs and config element names, as Fabric does.
const MaxNameLength = 249

var (
	channelIDPattern = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)
	elementPattern   = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)
)

// ValidateChannelID checks a channel ID the way Fabric does: a lower-case letter, then
// lower-case letters, digits, '.' and '-', at most 249 characters.
func ValidateChannelID(id string) error {
	switch {
	case id == "":
		return errors.New("channel ID is empty")
	case len(id) > MaxNameLength:
		return fmt.Errorf("channel ID is %d characters long; the limit is %d", len(id), MaxNameLength)
	case !channelIDPattern.MatchString(id):
		return fmt.Errorf("channel ID %q is invalid: it must start with a lower-case letter and contain only lower-case letters, digits, '.' and '-'", id)
	}
	return nil
}

// validateName checks the name of a config element.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("config element name is empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("config element name is %d characters long; the limit is %d", len(name), MaxNameLength)
	case name == "." || name == "..":
		return fmt.Errorf("config element name %q is not allowed", name)
	case !elementPattern.MatchString(name):
		return fmt.Errorf("config element name %q contains characters other than letters, digits, '.' and '-'", name)
	}
	return nil
}

// validateModPolicy checks the form of a mod_policy reference: a path of valid names,
// optionally absolute.
func validateModPolicy(mp string) error {
	if mp == "" {
		return errors.New("mod_policy is not set")
	}
	for i, part := range strings.Split(strings.TrimPrefix(mp, "/"), "/") {
		if err := validateName(part); err != nil {
			return fmt.Errorf("mod_policy %q: path element %d: %w", mp, i, err)
		}
	}
	return nil
}

type kind int

const (
	groupKind kind = iota
	valueKind
	policyKind
)

var kindNames = [...]string{"group", "value", "policy"}

// element is one node of a flattened config tree. Exactly one of group, value, policy is set.
type element struct {
	kind   kind
	name   string
	parent []string // path of the enclosing group, from the root; empty for the root
	group  *cb.ConfigGroup
	value  *cb.ConfigValue
	policy *cb.ConfigPolicy
}

func (e element) version() uint64 {
	switch e.kind {
	case groupKind:
		return e.group.GetVersion()
	case valueKind:
		return e.value.GetVersion()
	}
	return e.policy.GetVersion()
}

func (e element) modPolicy() string {
	switch e.kind {
	case groupKind:
		return e.group.GetModPolicy()
	case valueKind:
		return e.value.GetModPolicy()
	}
	return e.policy.GetModPolicy()
}

// path is the element's absolute path, e.g. "/Channel/Application/Org1MSP/AnchorPeers".
func (e element) path() string {
	return "/" + strings.Join(append(append([]string{}, e.parent...), e.name), "/")
}

func elementKey(k kind, path string) string { return kindNames[k] + " " + path }

func (e element) key() string { return elementKey(e.kind, e.path()) }

// flatten maps every element of the tree rooted at root (named rootName) by its key. A nil
// root gives an empty map: an update may have an empty read set.
func flatten(root *cb.ConfigGroup, rootName string) (map[string]element, error) {
	out := map[string]element{}
	if root == nil {
		return out, nil
	}
	if err := flattenGroup(out, nil, rootName, root); err != nil {
		return nil, err
	}
	return out, nil
}

func flattenGroup(out map[string]element, parent []string, name string, g *cb.ConfigGroup) error {
	if err := add(out, element{kind: groupKind, name: name, parent: parent, group: g}); err != nil {
		return err
	}
	path := append(append([]string{}, parent...), name)
	for k, sub := range g.Groups {
		if sub == nil {
			return fmt.Errorf("group %s/%s is empty", "/"+strings.Join(path, "/"), k)
		}
		if err := flattenGroup(out, path, k, sub); err != nil {
			return err
		}
	}
	for k, v := range g.Values {
		if v == nil {
			return fmt.Errorf("value %s/%s is empty", "/"+strings.Join(path, "/"), k)
		}
		if err := add(out, element{kind: valueKind, name: k, parent: path, value: v}); err != nil {
			return err
		}
	}
	for k, p := range g.Policies {
		if p == nil {
			return fmt.Errorf("policy %s/%s is empty", "/"+strings.Join(path, "/"), k)
		}
		if err := add(out, element{kind: policyKind, name: k, parent: path, policy: p}); err != nil {
			return err
		}
	}
	return nil
}

func add(out map[string]element, e element) error {
	if err := validateName(e.name); err != nil {
		return fmt.Errorf("%s %s: %w", kindNames[e.kind], e.path(), err)
	}
	out[e.key()] = e
	return nil
}

// rebuild turns a flattened tree back into a config tree, starting at the root group. A
// group's children are the ones its own entry lists, so a group replaced by an update brings
// its new list of children with it.
//
// legacyModPolicy reproduces Fabric's repair of configs made by v1.0, whose elements could
// lack a mod_policy: once the orderer group has a Capabilities value, every empty mod_policy in
// the rebuilt tree becomes "Admins". Peers apply the same repair, so omitting it would make a
// config that they compute differently.
func rebuild(elems map[string]element, rootName string) (*cb.ConfigGroup, error) {
	_, legacyModPolicy := elems[elementKey(valueKind, "/"+rootName+"/Orderer/Capabilities")]
	return rebuildGroup(elems, "/"+rootName, legacyModPolicy)
}

func rebuildGroup(elems map[string]element, path string, legacyModPolicy bool) (*cb.ConfigGroup, error) {
	e, ok := elems[elementKey(groupKind, path)]
	if !ok {
		return nil, fmt.Errorf("group %s is missing", path)
	}
	g := &cb.ConfigGroup{
		Version:   e.group.Version,
		ModPolicy: e.group.ModPolicy,
		Groups:    make(map[string]*cb.ConfigGroup, len(e.group.Groups)),
		Values:    make(map[string]*cb.ConfigValue, len(e.group.Values)),
		Policies:  make(map[string]*cb.ConfigPolicy, len(e.group.Policies)),
	}
	for k := range e.group.Groups {
		sub, err := rebuildGroup(elems, path+"/"+k, legacyModPolicy)
		if err != nil {
			return nil, err
		}
		g.Groups[k] = sub
	}
	for k := range e.group.Values {
		ve, ok := elems[elementKey(valueKind, path+"/"+k)]
		if !ok {
			return nil, fmt.Errorf("value %s/%s is missing", path, k)
		}
		g.Values[k] = proto.Clone(ve.value).(*cb.ConfigValue)
	}
	for k := range e.group.Policies {
		pe, ok := elems[elementKey(policyKind, path+"/"+k)]
		if !ok {
			return nil, fmt.Errorf("policy %s/%s is missing", path, k)
		}
		g.Policies[k] = proto.Clone(pe.policy).(*cb.ConfigPolicy)
	}
	if legacyModPolicy {
		if g.ModPolicy == "" {
			g.ModPolicy = "Admins"
		}
		for _, v := range g.Values {
			if v.ModPolicy == "" {
				v.ModPolicy = "Admins"
			}
		}
		for _, p := range g.Policies {
			if p.ModPolicy == "" {
				p.ModPolicy = "Admins"
			}
		}
	}
	return g, nil
}

// Validator validates config updates against one config (one sequence) of a channel.
type Validator struct {
	channelID string
	config    *cb.Config
	elems     map[string]element
	policies  policy.Manager
}

// NewValidator prepares the validation of updates to config, whose policies are pm.
func NewValidator(channelID string, config *cb.Config, pm policy.Manager) (*Validator, error) {
	if err := ValidateChannelID(channelID); err != nil {
		return nil, err
	}
	if config.GetChannelGroup() == nil {
		return nil, fmt.Errorf("channel %s: config has no channel group", channelID)
	}
	if pm == nil {
		return nil, fmt.Errorf("channel %s: config has no policies to check updates against", channelID)
	}
	elems, err := flatten(config.ChannelGroup, RootGroup)
	if err != nil {
		return nil, fmt.Errorf("channel %s: config: %w", channelID, err)
	}
	return &Validator{channelID: channelID, config: config, elems: elems, policies: pm}, nil
}

// ChannelID is the channel whose config is validated against.
func (v *Validator) ChannelID() string { return v.channelID }

// Sequence is the sequence of the current config.
func (v *Validator) Sequence() uint64 { return v.config.Sequence }

// Config is the current config.
func (v *Validator) Config() *cb.Config { return v.config }

// ProposeConfigUpdate validates a CONFIG_UPDATE envelope and returns the ConfigEnvelope it
// leads to: the next sequence's config, with env as its LastUpdate.
func (v *Validator) ProposeConfigUpdate(env *cb.Envelope) (*cb.ConfigEnvelope, error) {
	cue, err := UnwrapConfigUpdate(env)
	if err != nil {
		return nil, err
	}
	root, err := v.apply(cue)
	if err != nil {
		return nil, err
	}
	return &cb.ConfigEnvelope{
		Config:     &cb.Config{Sequence: v.config.Sequence + 1, ChannelGroup: root},
		LastUpdate: env,
	}, nil
}

// Validate checks that ce is what its LastUpdate makes of the current config.
func (v *Validator) Validate(ce *cb.ConfigEnvelope) error {
	if ce.GetConfig().GetChannelGroup() == nil {
		return errors.New("config envelope has no config")
	}
	if ce.Config.Sequence != v.config.Sequence+1 {
		return fmt.Errorf("config is at sequence %d; a config at sequence %d cannot follow it", v.config.Sequence, ce.Config.Sequence)
	}
	cue, err := UnwrapConfigUpdate(ce.LastUpdate)
	if err != nil {
		return fmt.Errorf("last update: %w", err)
	}
	root, err := v.apply(cue)
	if err != nil {
		return err
	}
	if !proto.Equal(root, ce.Config.ChannelGroup) {
		return errors.New("the config envelope's config is not what its last update makes of the current config")
	}
	return nil
}

// UnwrapConfigUpdate extracts the ConfigUpdateEnvelope of a CONFIG_UPDATE envelope.
func UnwrapConfigUpdate(env *cb.Envelope) (*cb.ConfigUpdateEnvelope, error) {
	if env == nil {
		return nil, errors.New("config update envelope is missing")
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return nil, fmt.Errorf("config update envelope: payload: %w", err)
	}
	if payload.Header == nil {
		return nil, errors.New("config update envelope: payload has no header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, fmt.Errorf("config update envelope: channel header: %w", err)
	}
	if cb.HeaderType(chdr.Type) != cb.HeaderType_CONFIG_UPDATE {
		return nil, fmt.Errorf("config update envelope has header type %s, want CONFIG_UPDATE", cb.HeaderType(chdr.Type))
	}
	cue := &cb.ConfigUpdateEnvelope{}
	if err := proto.Unmarshal(payload.Data, cue); err != nil {
		return nil, fmt.Errorf("config update envelope: %w", err)
	}
	return cue, nil
}

// UnmarshalConfigUpdate reads the ConfigUpdate inside an envelope.
func UnmarshalConfigUpdate(cue *cb.ConfigUpdateEnvelope) (*cb.ConfigUpdate, error) {
	cu := &cb.ConfigUpdate{}
	if err := proto.Unmarshal(cue.GetConfigUpdate(), cu); err != nil {
		return nil, fmt.Errorf("config update: %w", err)
	}
	return cu, nil
}

// apply authorizes cue and returns the resulting root group.
func (v *Validator) apply(cue *cb.ConfigUpdateEnvelope) (*cb.ConfigGroup, error) {
	cu, err := UnmarshalConfigUpdate(cue)
	if err != nil {
		return nil, err
	}
	if cu.ChannelId != v.channelID {
		return nil, fmt.Errorf("config update is for channel %q, but it was sent to channel %q", cu.ChannelId, v.channelID)
	}
	readSet, err := flatten(cu.ReadSet, RootGroup)
	if err != nil {
		return nil, fmt.Errorf("read set: %w", err)
	}
	for _, k := range sortedKeys(readSet) {
		cur, ok := v.elems[k]
		if !ok {
			return nil, fmt.Errorf("read set: %s is not in the current config", k)
		}
		if want := readSet[k].version(); cur.version() != want {
			return nil, fmt.Errorf("read set: the update requires %s at version %d, but it is at version %d (the update was computed from an outdated config)", k, want, cur.version())
		}
	}
	writeSet, err := flatten(cu.WriteSet, RootGroup)
	if err != nil {
		return nil, fmt.Errorf("write set: %w", err)
	}
	delta := map[string]element{}
	for k, w := range writeSet {
		if r, ok := readSet[k]; ok && r.version() == w.version() {
			continue
		}
		delta[k] = w
	}
	if len(delta) == 0 {
		return nil, errors.New("the update changes nothing: every element of its write set is at the version of its read set")
	}
	signed, err := policy.ConfigUpdateSignedData(cue)
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(delta) {
		w := delta[k]
		if err := validateModPolicy(w.modPolicy()); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		cur, ok := v.elems[k]
		if !ok {
			if w.version() != 0 {
				return nil, fmt.Errorf("%s does not exist, so the update must create it at version 0, not %d", k, w.version())
			}
			continue
		}
		if w.version() != cur.version()+1 {
			return nil, fmt.Errorf("%s is at version %d; the update must set it to version %d, not %d", k, cur.version(), cur.version()+1, w.version())
		}
		path := modPolicyPath(cur)
		p, ok := v.policies.GetPolicy(path)
		if !ok {
			return nil, fmt.Errorf("%s: its mod_policy %s does not exist", k, path)
		}
		if err := p.EvaluateSignedData(signed); err != nil {
			return nil, fmt.Errorf("%s: mod_policy %s is not satisfied by the update's signatures: %w", k, path, err)
		}
	}
	merged := make(map[string]element, len(v.elems)+len(delta))
	for k, e := range v.elems {
		merged[k] = e
	}
	for k, e := range delta {
		merged[k] = e
	}
	for k := range writeSet {
		if _, ok := merged[k]; !ok {
			return nil, fmt.Errorf("write set element %s is not in the resulting config", k)
		}
	}
	root, err := rebuild(merged, RootGroup)
	if err != nil {
		return nil, fmt.Errorf("resulting config: %w", err)
	}
	return root, nil
}

// modPolicyPath resolves an element's mod_policy to an absolute policy path. A relative
// mod_policy names a policy of the group the element is in, or, for a group, of the group
// itself; the root group's relative mod_policy is relative to the root.
func modPolicyPath(e element) string {
	mp := e.modPolicy()
	if strings.HasPrefix(mp, "/") {
		return mp
	}
	base := e.parent
	if e.kind == groupKind {
		base = append(append([]string{}, e.parent...), e.name)
	}
	if len(base) == 0 {
		base = []string{RootGroup}
	}
	return "/" + strings.Join(base, "/") + "/" + mp
}

func sortedKeys(m map[string]element) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
