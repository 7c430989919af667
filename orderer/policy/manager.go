package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	cb "github.com/hyperledger/fabric-protos-go/common"
)

// RootGroup is the name of a channel config's root group and the first element of every
// absolute policy path.
const RootGroup = "Channel"

// Tree is the policy manager of one config group and, through its sub-trees, of every group
// below it. It is immutable once built and safe for concurrent use.
type Tree struct {
	path     string // "Channel", "Channel/Application", ...: no leading slash, as Fabric
	src      *source
	policies map[string]evaluable // this group's own policies, by name
	children map[string]*Tree
}

var _ Manager = (*Tree)(nil)

// NewManager compiles every policy of a channel config, rooted at "Channel": its policies are
// found at /Channel/Readers, /Channel/Orderer/BlockValidation,
// /Channel/Application/Org1MSP/Admins, ... Any policy that does not compile is an error
// naming its path, as in Fabric, where such a config is refused as a whole.
func NewManager(channelGroup *cb.ConfigGroup, d Deserializer) (*Tree, error) {
	return NewTree(RootGroup, channelGroup, d)
}

// NewTree compiles the policies of group, whose path is rootPath ("Channel/Application"
// without a leading slash). It serves to evaluate policies of a config that is not a whole
// channel config — the Application group that a channel-creation request is checked against.
func NewTree(rootPath string, group *cb.ConfigGroup, d Deserializer) (*Tree, error) {
	rootPath = strings.Trim(rootPath, "/")
	if rootPath == "" {
		return nil, errors.New("policy tree needs a root path such as \"Channel\"")
	}
	return buildTree(rootPath, group, &source{d: d})
}

// buildTree follows Fabric's manager construction: sub-groups first (an implicit-meta policy
// refers to their policies), then the group's own policies. Names are visited in sorted order
// so that a config with several faults always reports the same one.
func buildTree(path string, group *cb.ConfigGroup, src *source) (*Tree, error) {
	if group == nil {
		return nil, fmt.Errorf("config group /%s is nil", path)
	}
	t := &Tree{
		path:     path,
		src:      src,
		policies: make(map[string]evaluable, len(group.Policies)),
		children: make(map[string]*Tree, len(group.Groups)),
	}
	for _, name := range sortedKeys(group.Groups) {
		child, err := buildTree(path+"/"+name, group.Groups[name], src)
		if err != nil {
			return nil, err
		}
		t.children[name] = child
	}
	for _, name := range sortedKeys(group.Policies) {
		p, err := t.compile(group.Policies[name].GetPolicy())
		if err != nil {
			return nil, fmt.Errorf("policy /%s/%s: %w", path, name, err)
		}
		t.policies[name] = p
	}
	return t, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// compile turns a policy of this group into its evaluable form. Fabric registers providers
// for SIGNATURE only and handles IMPLICIT_META itself; MSP (2), UNKNOWN (0) and any other
// value have no provider, which makes the config invalid.
func (t *Tree) compile(p *cb.Policy) (evaluable, error) {
	if p == nil {
		return nil, errors.New("policy is nil")
	}
	switch cb.Policy_PolicyType(p.Type) {
	case cb.Policy_SIGNATURE:
		return compileSignatureBytes(p.Value, t.src)
	case cb.Policy_IMPLICIT_META:
		return compileImplicitMeta(p.Value, t.children)
	}
	if name, ok := cb.Policy_PolicyType_name[p.Type]; ok {
		return nil, fmt.Errorf("unsupported policy type %d (%s)", p.Type, name)
	}
	return nil, fmt.Errorf("unknown policy type %d", p.Type)
}

// Compile compiles p as if it were the policy called name in this tree's group: an
// IMPLICIT_META policy ranges over this group's sub-groups. This is how a policy kept in a
// config value is evaluated — the consortium's ChannelCreationPolicy, checked in the context
// of the new channel's Application group. name appears in evaluation errors.
func (t *Tree) Compile(name string, p *cb.Policy) (Policy, error) {
	path := t.Path() + "/" + name
	e, err := t.compile(p)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return &named{path: path, p: e}, nil
}

// NewPolicy compiles a policy that stands outside any config group. Only SIGNATURE policies
// qualify: an implicit-meta policy without sub-groups would accept any signature set, so it is
// refused here (use Tree.Compile).
func NewPolicy(p *cb.Policy, d Deserializer) (Policy, error) {
	if p == nil {
		return nil, errors.New("policy is nil")
	}
	if cb.Policy_PolicyType(p.Type) != cb.Policy_SIGNATURE {
		return nil, fmt.Errorf("policy of type %d needs a config group; only SIGNATURE policies stand alone", p.Type)
	}
	sp, err := compileSignatureBytes(p.Value, &source{d: d})
	if err != nil {
		return nil, err
	}
	return &named{p: sp}, nil
}

// Path is the tree's group path, "/Channel/Application".
func (t *Tree) Path() string { return "/" + t.path }

// GetPolicy finds a policy by path, absolute ("/Channel/Application/Writers") or relative to
// this tree's group ("Writers", "Application/Org1MSP/Admins"). When the path names no policy
// it returns a policy that rejects every signature set with an error naming the path, and
// false, as Fabric does.
func (t *Tree) GetPolicy(path string) (Policy, bool) {
	p, full := t.lookup(path)
	if r, ok := p.(rejectPolicy); ok {
		return r, false
	}
	return &named{path: full, p: p}, true
}

// lookup resolves a path as Fabric's manager does and returns the policy (a rejectPolicy when
// none) and its full path for messages.
//
// Fabric checks an absolute path only for the prefix "/<group path>" and then drops one more
// character, whatever it is; kept as is, since implicit-meta sub-policy names in configs go
// through the same resolution.
func (t *Tree) lookup(path string) (evaluable, string) {
	if path == "" {
		return rejectPolicy(""), ""
	}
	rel := path
	if strings.HasPrefix(path, "/") {
		prefix := "/" + t.path
		if !strings.HasPrefix(path, prefix) || len(path) < len(prefix)+1 {
			return rejectPolicy(path), path
		}
		rel = path[len(prefix)+1:]
	}
	full := "/" + t.path + "/" + rel
	if p, ok := t.resolve(rel); ok {
		return p, full
	}
	return rejectPolicy(full), full
}

// resolve finds rel among this group's policies and, as "<sub-group>/<rest>", its
// sub-groups'. Fabric flattens all of them into one map, copying the sub-groups' entries after
// the group's own; walking instead gives the same answers (a sub-group's entry wins a clash
// with an own policy whose name contains a slash) without a map that grows with the square of
// the config's depth.
func (t *Tree) resolve(rel string) (evaluable, bool) {
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		if child, ok := t.children[rel[:i]]; ok {
			if p, ok := child.resolve(rel[i+1:]); ok {
				return p, true
			}
		}
	}
	p, ok := t.policies[rel]
	return p, ok
}

// Manager returns the sub-tree at path, a list of group names below this one ("Application",
// "Org1MSP"); no names is the tree itself.
func (t *Tree) Manager(path ...string) (*Tree, bool) {
	for _, name := range path {
		child, ok := t.children[name]
		if !ok {
			return nil, false
		}
		t = child
	}
	return t, true
}

// Policies lists the absolute path of every policy of the tree, sorted.
func (t *Tree) Policies() []string {
	var out []string
	var walk func(*Tree)
	walk = func(n *Tree) {
		for name := range n.policies {
			out = append(out, "/"+n.path+"/"+name)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(t)
	sort.Strings(out)
	return out
}
