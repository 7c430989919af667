package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go/common"
)

// metaGroup is a group holding policy P = rule over k sub-groups Org0..Org(k-1), each with
// Writers = OR('OrgN.member').
func metaGroup(t *testing.T, rule cb.ImplicitMetaPolicy_Rule, k int) *cb.ConfigGroup {
	g := &cb.ConfigGroup{
		Groups: map[string]*cb.ConfigGroup{},
		Policies: map[string]*cb.ConfigPolicy{"P": {Policy: &cb.Policy{
			Type:  int32(cb.Policy_IMPLICIT_META),
			Value: mustMarshal(t, &cb.ImplicitMetaPolicy{Rule: rule, SubPolicy: "Writers"}),
		}}},
	}
	for i := 0; i < k; i++ {
		org := fmt.Sprintf("Org%d", i)
		g.Groups[org] = &cb.ConfigGroup{Policies: map[string]*cb.ConfigPolicy{"Writers": sigPolicy(t, "OR('"+org+".member')")}}
	}
	return g
}

func TestImplicitMetaThresholds(t *testing.T) {
	msps := newFakeMSPs("Org0", "Org1", "Org2")
	for _, rule := range []cb.ImplicitMetaPolicy_Rule{cb.ImplicitMetaPolicy_ANY, cb.ImplicitMetaPolicy_ALL, cb.ImplicitMetaPolicy_MAJORITY, 7} {
		for k := 0; k <= 3; k++ {
			tree, err := NewManager(metaGroup(t, rule, k), msps)
			if err != nil {
				t.Fatal(err)
			}
			p, ok := tree.GetPolicy("P")
			if !ok {
				t.Fatal("P missing")
			}
			for sat := 0; sat <= k; sat++ {
				var set []*SignedData
				for i := 0; i < sat; i++ {
					set = append(set, good(fmt.Sprintf("Org%d/user", i)))
				}
				var want bool
				switch {
				case k == 0:
					want = true // no sub-groups: threshold 0, anything goes
				case rule == cb.ImplicitMetaPolicy_ANY:
					want = sat >= 1
				case rule == cb.ImplicitMetaPolicy_ALL:
					want = sat == k
				case rule == cb.ImplicitMetaPolicy_MAJORITY:
					want = sat >= k/2+1
				default:
					want = sat == 0 // unknown rule: threshold 0, Fabric passes only if none is satisfied
				}
				err := p.EvaluateSignedData(set)
				if (err == nil) != want {
					t.Errorf("%v over %d sub-groups with %d satisfied: err = %v, want ok=%v", rule, k, sat, err, want)
				}
			}
		}
	}
}

func TestImplicitMetaMissingSubPolicy(t *testing.T) {
	msps := newFakeMSPs("Org0", "Org1")
	for _, tc := range []struct {
		rule cb.ImplicitMetaPolicy_Rule
		ok   bool
	}{{cb.ImplicitMetaPolicy_ANY, true}, {cb.ImplicitMetaPolicy_ALL, false}, {cb.ImplicitMetaPolicy_MAJORITY, false}} {
		g := metaGroup(t, tc.rule, 2)
		delete(g.Groups["Org1"].Policies, "Writers") // a sub-group without the sub-policy is not a build error
		tree, err := NewManager(g, msps)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := tree.GetPolicy("/Channel/P")
		err = p.EvaluateSignedData(sigs("Org0/a", "Org1/b"))
		if (err == nil) != tc.ok {
			t.Errorf("%v: err = %v, want ok=%v", tc.rule, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "/Channel/Org1/Writers (no such policy: '/Channel/Org1/Writers')") {
			t.Errorf("%v: error does not name the missing sub-policy: %v", tc.rule, err)
		}
	}
}

func TestManagerPaths(t *testing.T) {
	msps := newFakeMSPs("OrdererMSP", "Org1MSP", "Org2MSP")
	tree, err := NewManager(appChannel(t), msps)
	if err != nil {
		t.Fatal(err)
	}
	org1Admin := sigs("Org1MSP/root/admin")
	for _, tc := range []struct {
		path  string
		found bool
		sigs  []*SignedData
		ok    bool
	}{
		{ChannelReaders, true, sigs("Org2MSP/bob"), true},
		{ChannelWriters, true, sigs("OrdererMSP/o"), true},
		{ChannelAdmins, true, org1Admin, false}, // MAJORITY of Application and Orderer admins
		{ChannelAdmins, true, sigs("Org1MSP/root/admin", "Org2MSP/root/admin", "OrdererMSP/root/admin"), true},
		{BlockValidation, true, sigs("OrdererMSP/o"), true},
		{BlockValidation, true, sigs("Org1MSP/alice"), false},
		{ChannelOrdererWriters, true, sigs("OrdererMSP/o"), true},
		{ChannelApplicationAdmin, true, org1Admin, false}, // MAJORITY of 2 = 2
		{"/Channel/Application/Org1MSP/Admins", true, org1Admin, true},
		{"/Channel/Application/Org1MSP/Admins", true, sigs("Org1MSP/alice"), false},
		{"/Channel/Application/Endorsement", true, sigs("Org1MSP/p/peer", "Org2MSP/p/peer"), true},
		{"Application/Org1MSP/Admins", true, org1Admin, true},
		{"Readers", true, sigs("Org1MSP/alice"), true},
		{"Orderer/OrdererOrg/Writers", true, sigs("OrdererMSP/o"), true},
		{"/Channel/Foo", false, org1Admin, false},
		{"Foo", false, org1Admin, false},
		{"Application/Org3MSP/Admins", false, org1Admin, false},
		{"", false, org1Admin, false},
		{"/Other/Readers", false, org1Admin, false},
		{"/Channel", false, org1Admin, false},
		{"/Channel/", false, org1Admin, false},
		{"/", false, org1Admin, false},
		// Fabric checks only the "/Channel" prefix and drops the next character unseen.
		{"/ChannelXReaders", true, sigs("Org1MSP/alice"), true},
	} {
		p, found := tree.GetPolicy(tc.path)
		if found != tc.found {
			t.Errorf("GetPolicy(%q) found = %v, want %v", tc.path, found, tc.found)
			continue
		}
		err := p.EvaluateSignedData(tc.sigs)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok=%v", tc.path, err, tc.ok)
		}
		if !found && !errors.Is(err, ErrNoSuchPolicy) {
			t.Errorf("%q: err %v is not ErrNoSuchPolicy", tc.path, err)
		}
	}
	if _, ok := tree.GetPolicy("/Channel/Foo"); ok {
		t.Fatal("found /Channel/Foo")
	} else if p, _ := tree.GetPolicy("Foo"); !strings.Contains(p.EvaluateSignedData(nil).Error(), "no such policy: '/Channel/Foo'") {
		t.Fatalf("reject policy does not name the path: %v", p.EvaluateSignedData(nil))
	}
}

func TestSubManagers(t *testing.T) {
	msps := newFakeMSPs("OrdererMSP", "Org1MSP", "Org2MSP")
	tree, err := NewManager(appChannel(t), msps)
	if err != nil {
		t.Fatal(err)
	}
	if self, ok := tree.Manager(); !ok || self != tree {
		t.Fatal("Manager() is not the tree itself")
	}
	app, ok := tree.Manager("Application")
	if !ok || app.Path() != "/Channel/Application" {
		t.Fatalf("Manager(Application) = %v, %v", app, ok)
	}
	org1, ok := tree.Manager("Application", "Org1MSP")
	if !ok || org1.Path() != "/Channel/Application/Org1MSP" {
		t.Fatalf("Manager(Application, Org1MSP) = %v, %v", org1, ok)
	}
	if _, ok := tree.Manager("Application", "Nope"); ok {
		t.Fatal("found a missing sub-manager")
	}
	for path, found := range map[string]bool{
		"Writers":                              true,
		"Org1MSP/Admins":                       true,
		"/Channel/Application/Org1MSP/Admins":  true,
		"/Channel/Application/Writers":         true,
		"/Channel/Writers":                     false, // above the sub-manager
		"/Channel/Orderer/BlockValidation":     false,
		"/Channel/ApplicationXOrg2MSP/Writers": true, // Fabric's unchecked separator again
	} {
		if _, ok := app.GetPolicy(path); ok != found {
			t.Errorf("Application.GetPolicy(%q) found = %v, want %v", path, ok, found)
		}
	}
	p, _ := app.GetPolicy("Org1MSP/Admins")
	err = p.EvaluateSignedData(sigs("Org1MSP/alice"))
	if err == nil || !strings.Contains(err.Error(), "policy /Channel/Application/Org1MSP/Admins: requires OR('Org1MSP.admin')") {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"/Channel/Admins", "/Channel/Application/Admins", "/Channel/Application/Endorsement",
		"/Channel/Application/Org1MSP/Admins", "/Channel/Application/Org1MSP/Endorsement",
		"/Channel/Application/Org1MSP/Readers", "/Channel/Application/Org1MSP/Writers",
		"/Channel/Application/Org2MSP/Admins", "/Channel/Application/Org2MSP/Endorsement",
		"/Channel/Application/Org2MSP/Readers", "/Channel/Application/Org2MSP/Writers",
		"/Channel/Application/Readers", "/Channel/Application/Writers",
		"/Channel/Orderer/Admins", "/Channel/Orderer/BlockValidation",
		"/Channel/Orderer/OrdererOrg/Admins", "/Channel/Orderer/OrdererOrg/Endorsement",
		"/Channel/Orderer/OrdererOrg/Readers", "/Channel/Orderer/OrdererOrg/Writers",
		"/Channel/Orderer/Readers", "/Channel/Orderer/Writers",
		"/Channel/Readers", "/Channel/Writers",
	}
	if got := tree.Policies(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Policies() = %v", got)
	}
}

// A sub-group's policy wins a name clash with an own policy whose name contains a slash, as
// in Fabric's flattened map.
func TestPolicyNameClash(t *testing.T) {
	g := &cb.ConfigGroup{
		Groups:   map[string]*cb.ConfigGroup{"A": {Policies: map[string]*cb.ConfigPolicy{"P": sigPolicy(t, "OR('A.member')")}}},
		Policies: map[string]*cb.ConfigPolicy{"A/P": sigPolicy(t, "OR('B.member')"), "A/Q": sigPolicy(t, "OR('B.member')")},
	}
	tree, err := NewManager(g, newFakeMSPs("A", "B"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tree.GetPolicy("A/P")
	if err := p.EvaluateSignedData(sigs("A/a")); err != nil {
		t.Fatalf("sub-group policy did not win: %v", err)
	}
	p, _ = tree.GetPolicy("A/Q")
	if err := p.EvaluateSignedData(sigs("B/b")); err != nil {
		t.Fatalf("own policy with a slash not found: %v", err)
	}
}

func TestEvaluationErrorNamesEverything(t *testing.T) {
	msps := newFakeMSPs("OrdererMSP", "Org1MSP", "Org2MSP")
	tree, err := NewManager(appChannel(t), msps)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tree.GetPolicy(ChannelWriters)
	err = p.EvaluateSignedData([]*SignedData{good("Org3MSP/eve"), bad("Org1MSP/alice")})
	if !errors.Is(err, ErrNotSatisfied) {
		t.Fatalf("err %v is not ErrNotSatisfied", err)
	}
	for _, w := range []string{
		"signature set did not satisfy policy /Channel/Writers: 0 of 2 sub-policies satisfied, 1 required (ANY Writers)",
		"not satisfied: /Channel/Application/Writers (0 of 2 sub-policies satisfied, 1 required (ANY Writers); not satisfied: " +
			"/Channel/Application/Org1MSP/Writers (requires OR('Org1MSP.member')), /Channel/Application/Org2MSP/Writers (requires OR('Org2MSP.member')))",
		"/Channel/Orderer/Writers (0 of 1 sub-policies satisfied",
		"2 signatures, valid from []",
		`#0: invalid identity: unknown MSP "Org3MSP"`,
		"#1: invalid signature: signature mismatch",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	// The signature set is turned into identities once per evaluation, however many leaves
	// the implicit-meta policies visit.
	msps.verifies.Store(0)
	p, _ = tree.GetPolicy(ChannelAdmins)
	if err := p.EvaluateSignedData(sigs("Org1MSP/a", "Org2MSP/b")); err == nil {
		t.Fatal("members satisfied Admins")
	}
	if n := msps.verifies.Load(); n != 2 {
		t.Fatalf("%d verifications for 2 signatures", n)
	}
}

func TestManagerBuildErrors(t *testing.T) {
	msps := newFakeMSPs("Org1MSP")
	withPolicy := func(p *cb.Policy) *cb.ConfigGroup {
		g := appChannel(t)
		g.Groups["Application"].Groups["Org1MSP"].Policies["Admins"] = &cb.ConfigPolicy{Policy: p}
		return g
	}
	const at = "policy /Channel/Application/Org1MSP/Admins: "
	for _, tc := range []struct {
		name  string
		group *cb.ConfigGroup
		want  string
	}{
		{"nil root", nil, "config group /Channel is nil"},
		{"nil sub-group", &cb.ConfigGroup{Groups: map[string]*cb.ConfigGroup{"Application": nil}}, "config group /Channel/Application is nil"},
		{"nil policy", withPolicy(nil), at + "policy is nil"},
		{"MSP type", withPolicy(&cb.Policy{Type: int32(cb.Policy_MSP)}), at + "unsupported policy type 2 (MSP)"},
		{"UNKNOWN type", withPolicy(&cb.Policy{Type: int32(cb.Policy_UNKNOWN)}), at + "unsupported policy type 0 (UNKNOWN)"},
		{"unknown type", withPolicy(&cb.Policy{Type: 42}), at + "unknown policy type 42"},
		{"bad signature bytes", withPolicy(&cb.Policy{Type: int32(cb.Policy_SIGNATURE), Value: []byte{0xff}}), at + "unmarshalling SignaturePolicyEnvelope"},
		{"bad implicit meta bytes", withPolicy(&cb.Policy{Type: int32(cb.Policy_IMPLICIT_META), Value: []byte{0xff}}), at + "unmarshalling ImplicitMetaPolicy"},
		{"signature version", withPolicy(&cb.Policy{Type: int32(cb.Policy_SIGNATURE), Value: mustMarshal(t, &cb.SignaturePolicyEnvelope{Version: 2})}), at + "signature policy version 2"},
		{"index out of range", withPolicy(&cb.Policy{Type: int32(cb.Policy_SIGNATURE), Value: mustMarshal(t, &cb.SignaturePolicyEnvelope{
			Rule: &cb.SignaturePolicy{Type: &cb.SignaturePolicy_SignedBy{SignedBy: 0}}})}), at + "SignedBy index 0 out of range: the policy has 0 identities"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewManager(tc.group, msps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := NewTree("/", &cb.ConfigGroup{}, msps); err == nil {
		t.Fatal("tree without root path")
	}
	// A config policy entry that is itself nil.
	g := appChannel(t)
	g.Policies["Readers"] = nil
	if _, err := NewManager(g, msps); err == nil || !strings.Contains(err.Error(), "policy /Channel/Readers: policy is nil") {
		t.Fatalf("err = %v", err)
	}
}

// The consortium's ChannelCreationPolicy is a cb.Policy kept in a config value; Fabric
// evaluates it as a policy of the new channel's Application group, whose sub-groups are the
// member orgs of the request.
func TestCompileInGroupContext(t *testing.T) {
	msps := newFakeMSPs("Org1MSP", "Org2MSP")
	app := &cb.ConfigGroup{Groups: map[string]*cb.ConfigGroup{"Org1MSP": orgGroup(t, "Org1MSP"), "Org2MSP": orgGroup(t, "Org2MSP")}}
	tree, err := NewTree("Channel/Application", app, msps)
	if err != nil {
		t.Fatal(err)
	}
	creation := metaPolicy(t, "ANY Admins").Policy
	p, err := tree.Compile("ChannelCreationPolicy", creation)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EvaluateSignedData(sigs("Org2MSP/root/admin")); err != nil {
		t.Fatal(err)
	}
	err = p.EvaluateSignedData(sigs("Org2MSP/bob"))
	if err == nil || !strings.Contains(err.Error(), "policy /Channel/Application/ChannelCreationPolicy: 0 of 2 sub-policies satisfied") {
		t.Fatalf("err = %v", err)
	}
	if _, err := tree.Compile("X", &cb.Policy{Type: int32(cb.Policy_MSP)}); err == nil || !strings.Contains(err.Error(), "policy /Channel/Application/X: unsupported policy type 2") {
		t.Fatalf("err = %v", err)
	}
	// Empty Application group (a consortium without members): ANY over nothing is satisfied.
	empty, err := NewTree("/Channel/Application", &cb.ConfigGroup{}, msps)
	if err != nil {
		t.Fatal(err)
	}
	p, err = empty.Compile("ChannelCreationPolicy", creation)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EvaluateSignedData(nil); err != nil {
		t.Fatalf("ANY over no sub-groups: %v", err)
	}
}

func TestConcurrentEvaluation(t *testing.T) {
	msps := newFakeMSPs("OrdererMSP", "Org1MSP", "Org2MSP")
	tree, err := NewManager(appChannel(t), msps)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tree.GetPolicy(ChannelWriters)
	done := make(chan error)
	for i := 0; i < 8; i++ {
		go func(i int) {
			var err error
			for j := 0; j < 100 && err == nil; j++ {
				if i%2 == 0 {
					err = p.EvaluateSignedData(sigs("Org2MSP/bob"))
				} else if p.EvaluateSignedData(sigs("Org3MSP/eve")) == nil {
					err = errors.New("unknown MSP satisfied Writers")
				}
			}
			done <- err
		}(i)
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
