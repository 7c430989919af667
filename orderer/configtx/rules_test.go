package configtx

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/policy"
)

type rejectAll struct{}

func (rejectAll) GetPolicy(string) (policy.Policy, bool) { return rejectAll{}, true }

func (rejectAll) EvaluateSignedData([]*policy.SignedData) error { return errors.New("rejected") }

func updateEnv(t *testing.T, cu *cb.ConfigUpdate) *cb.Envelope {
	t.Helper()
	raw, err := proto.Marshal(cu)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := proto.Marshal(&cb.ConfigUpdateEnvelope{ConfigUpdate: raw})
	chdr, _ := proto.Marshal(&cb.ChannelHeader{Type: int32(cb.HeaderType_CONFIG_UPDATE), ChannelId: cu.ChannelId})
	payload, _ := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdr}, Data: data})
	return &cb.Envelope{Payload: payload}
}

func group(version uint64, mod string) *cb.ConfigGroup {
	g := newGroup()
	g.Version, g.ModPolicy = version, mod
	return g
}

// TestUpdateRules covers each rule of config-update validation on the config of a channel
// Fabric created, with updates built by hand.
func TestUpdateRules(t *testing.T) {
	base := configEnvelope(t, readBlock(t, filepath.Join(vectors, "config-update", "blocks", "mychannel", "0.block")).Data.Data[0]).Config
	orderer := base.ChannelGroup.Groups["Orderer"]
	batchSize := orderer.Values["BatchSize"]

	// An update of Orderer/BatchTimeout: read set names the Orderer group at its version,
	// write set bumps the value.
	valid := func() *cb.ConfigUpdate {
		rs, ws := group(base.ChannelGroup.Version, ""), group(base.ChannelGroup.Version, "")
		rs.Groups["Orderer"] = group(orderer.Version, "")
		wo := group(orderer.Version, "")
		bt := proto.Clone(orderer.Values["BatchTimeout"]).(*cb.ConfigValue)
		bt.Version++
		wo.Values["BatchTimeout"] = bt
		ws.Groups["Orderer"] = wo
		return &cb.ConfigUpdate{ChannelId: "mychannel", ReadSet: rs, WriteSet: ws}
	}
	cases := []struct {
		name   string
		mutate func(*cb.ConfigUpdate)
		pm     policy.Manager
		want   string
	}{
		{"valid", func(*cb.ConfigUpdate) {}, acceptAll{}, ""},
		{"mod_policy not satisfied", func(*cb.ConfigUpdate) {}, rejectAll{}, "mod_policy /Channel/Orderer/Admins is not satisfied"},
		{"other channel", func(cu *cb.ConfigUpdate) { cu.ChannelId = "other" }, acceptAll{}, `for channel "other"`},
		{"outdated read set", func(cu *cb.ConfigUpdate) { cu.ReadSet.Groups["Orderer"].Version++ }, acceptAll{}, "outdated config"},
		{"read set names a missing element", func(cu *cb.ConfigUpdate) { cu.ReadSet.Groups["Nope"] = group(0, "") }, acceptAll{}, "group /Channel/Nope is not in the current config"},
		{"version skipped", func(cu *cb.ConfigUpdate) { cu.WriteSet.Groups["Orderer"].Values["BatchTimeout"].Version++ }, acceptAll{}, "must set it to version"},
		{"nothing changes", func(cu *cb.ConfigUpdate) { cu.WriteSet.Groups["Orderer"].Values = nil }, acceptAll{}, "changes nothing"},
		{"new element not at version 0", func(cu *cb.ConfigUpdate) {
			cu.WriteSet.Groups["Orderer"].Values["New"] = &cb.ConfigValue{Version: 1, ModPolicy: "Admins"}
		}, acceptAll{}, "must create it at version 0"},
		{"empty mod_policy", func(cu *cb.ConfigUpdate) { cu.WriteSet.Groups["Orderer"].Values["BatchTimeout"].ModPolicy = "" }, acceptAll{}, "mod_policy is not set"},
		{"bad element name", func(cu *cb.ConfigUpdate) { cu.WriteSet.Groups["bad/name"] = group(0, "Admins") }, acceptAll{}, "contains characters"},
		{"new value not in a bumped group", func(cu *cb.ConfigUpdate) {
			cu.WriteSet.Groups["Orderer"].Values["New"] = &cb.ConfigValue{ModPolicy: "Admins"}
		}, acceptAll{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cu := valid()
			c.mutate(cu)
			v, err := NewValidator("mychannel", base, c.pm)
			if err != nil {
				t.Fatal(err)
			}
			ce, err := v.ProposeConfigUpdate(updateEnv(t, cu))
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if ce.Config.Sequence != base.Sequence+1 {
					t.Fatalf("sequence %d, want %d", ce.Config.Sequence, base.Sequence+1)
				}
				// The untouched BatchSize value carries over as it was.
				if !proto.Equal(ce.Config.ChannelGroup.Groups["Orderer"].Values["BatchSize"], batchSize) {
					t.Fatal("BatchSize changed")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestRemovalByGroupUpdate checks that bumping a group replaces its list of children: an
// organization left out of the write set's Application group is removed.
func TestRemovalByGroupUpdate(t *testing.T) {
	base := configEnvelope(t, readBlock(t, filepath.Join(vectors, "config-update", "blocks", "mychannel", "0.block")).Data.Data[0]).Config
	app := base.ChannelGroup.Groups["Application"]
	var keep string
	for name := range app.Groups {
		keep = name
		break
	}
	rs, ws := group(base.ChannelGroup.Version, ""), group(base.ChannelGroup.Version, "")
	rs.Groups["Application"] = group(app.Version, "")
	wa := group(app.Version+1, app.ModPolicy)
	for k, p := range app.Policies {
		wa.Policies[k] = &cb.ConfigPolicy{Version: p.Version}
		rs.Groups["Application"].Policies[k] = &cb.ConfigPolicy{Version: p.Version}
	}
	for k, v := range app.Values {
		wa.Values[k] = &cb.ConfigValue{Version: v.Version}
		rs.Groups["Application"].Values[k] = &cb.ConfigValue{Version: v.Version}
	}
	wa.Groups[keep] = group(app.Groups[keep].Version, "")
	rs.Groups["Application"].Groups[keep] = group(app.Groups[keep].Version, "")
	ws.Groups["Application"] = wa
	v, err := NewValidator("mychannel", base, acceptAll{})
	if err != nil {
		t.Fatal(err)
	}
	ce, err := v.ProposeConfigUpdate(updateEnv(t, &cb.ConfigUpdate{ChannelId: "mychannel", ReadSet: rs, WriteSet: ws}))
	if err != nil {
		t.Fatal(err)
	}
	got := ce.Config.ChannelGroup.Groups["Application"]
	if len(got.Groups) != 1 || got.Groups[keep] == nil || got.Version != app.Version+1 {
		t.Fatalf("Application after the update: version %d, orgs %d", got.Version, len(got.Groups))
	}
	if !proto.Equal(got.Groups[keep], app.Groups[keep]) {
		t.Fatal("the kept organization changed")
	}
}

func TestValidateChannelID(t *testing.T) {
	for id, ok := range map[string]bool{
		"mychannel": true, "a": true, "a.b-c9": true, strings.Repeat("a", 249): true,
		"": false, "MyChannel": false, "9abc": false, "a_b": false, "-a": false, strings.Repeat("a", 250): false,
	} {
		if err := ValidateChannelID(id); (err == nil) != ok {
			t.Errorf("ValidateChannelID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}
