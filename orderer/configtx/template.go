package configtx

import (
	"errors"
	"fmt"
	"sort"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

// Config tree names used by channel creation.
const (
	ApplicationGroup      = "Application"
	OrdererGroup          = "Orderer"
	ConsortiumsGroup      = "Consortiums"
	ConsortiumValue       = "Consortium"
	ChannelCreationPolicy = "ChannelCreationPolicy"
	AdminsPolicy          = "Admins"
)

// CreationRequest is what a channel-creation CONFIG_UPDATE asks for.
type CreationRequest struct {
	ChannelID  string
	Consortium string
	// Orgs are the application organizations named in the write set, sorted.
	Orgs []string
	// Update is the request's ConfigUpdate.
	Update *cb.ConfigUpdate
}

// ParseCreationRequest reads a channel-creation CONFIG_UPDATE envelope and checks its form.
func ParseCreationRequest(env *cb.Envelope) (*CreationRequest, error) {
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.GetPayload(), payload); err != nil {
		return nil, fmt.Errorf("channel creation: payload: %w", err)
	}
	if payload.Header == nil {
		return nil, errors.New("channel creation: payload has no header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, fmt.Errorf("channel creation: channel header: %w", err)
	}
	cue := &cb.ConfigUpdateEnvelope{}
	if err := proto.Unmarshal(payload.Data, cue); err != nil {
		return nil, fmt.Errorf("channel creation: config update envelope: %w", err)
	}
	cu, err := UnmarshalConfigUpdate(cue)
	if err != nil {
		return nil, fmt.Errorf("channel creation: %w", err)
	}
	if cu.ChannelId != chdr.ChannelId {
		return nil, fmt.Errorf("channel creation: the config update is for channel %q but its envelope for channel %q", cu.ChannelId, chdr.ChannelId)
	}
	if err := ValidateChannelID(cu.ChannelId); err != nil {
		return nil, fmt.Errorf("channel creation: %w", err)
	}
	if cu.WriteSet == nil {
		return nil, fmt.Errorf("channel creation of %s: the config update has an empty write set", cu.ChannelId)
	}
	app := cu.WriteSet.Groups[ApplicationGroup]
	if app == nil {
		return nil, fmt.Errorf("channel creation of %s: the write set has no Application group", cu.ChannelId)
	}
	if app.Version != 1 {
		return nil, fmt.Errorf("channel creation of %s: the write set must set the Application group to version 1, not %d", cu.ChannelId, app.Version)
	}
	cv := cu.WriteSet.Values[ConsortiumValue]
	if cv == nil {
		return nil, fmt.Errorf("channel creation of %s: the write set names no consortium (value Consortium)", cu.ChannelId)
	}
	cons := &cb.Consortium{}
	if err := proto.Unmarshal(cv.Value, cons); err != nil {
		return nil, fmt.Errorf("channel creation of %s: value Consortium: %w", cu.ChannelId, err)
	}
	req := &CreationRequest{ChannelID: cu.ChannelId, Consortium: cons.Name, Update: cu}
	for org := range app.Groups {
		req.Orgs = append(req.Orgs, org)
	}
	sort.Strings(req.Orgs)
	return req, nil
}

// Template builds the config a channel-creation request is applied to, from the system
// channel's config, as Fabric's orderer builds it: the system channel's root values and
// policies, a copy of its Orderer group, the consortium's name, and an Application group with
// the requested member organizations (copied from the consortium) whose mod_policy is the
// consortium's channel creation policy. ordererCaps are the system channel's orderer
// capabilities, which select between Fabric's template variants.
//
// The request is then validated against the template like any config update
// (Validator.ProposeConfigUpdate); its result is the new channel's first config.
func Template(system *cb.Config, ordererCaps map[string]bool, req *CreationRequest) (*cb.Config, error) {
	sysRoot := system.GetChannelGroup()
	consortiums := sysRoot.GetGroups()[ConsortiumsGroup]
	if consortiums == nil {
		return nil, errors.New("channel creation: this orderer's system channel has no Consortiums group, so it cannot create channels")
	}
	consortium := consortiums.Groups[req.Consortium]
	if consortium == nil {
		return nil, fmt.Errorf("channel creation of %s: consortium %q is not defined in the system channel", req.ChannelID, req.Consortium)
	}
	ccpValue := consortium.Values[ChannelCreationPolicy]
	if ccpValue == nil {
		return nil, fmt.Errorf("channel creation of %s: consortium %q has no ChannelCreationPolicy", req.ChannelID, req.Consortium)
	}
	ccp := &cb.Policy{}
	if err := proto.Unmarshal(ccpValue.Value, ccp); err != nil {
		return nil, fmt.Errorf("channel creation of %s: consortium %q: ChannelCreationPolicy: %w", req.ChannelID, req.Consortium, err)
	}

	// With V2_0 orderer capabilities a request may define its own Application Admins policy;
	// the consortium's creation policy then governs it under the name Admins.
	policyKey := ChannelCreationPolicy
	if ordererCaps["V2_0"] {
		if pols := req.Update.WriteSet.Groups[ApplicationGroup].Policies; pols != nil {
			if admins, ok := pols[AdminsPolicy]; !ok || admins.Version != 0 {
				policyKey = AdminsPolicy
			}
		}
	}
	app := newGroup()
	app.Policies[policyKey] = &cb.ConfigPolicy{Policy: ccp, ModPolicy: policyKey}
	app.ModPolicy = policyKey

	if len(consortium.Groups) > 0 {
		if len(req.Orgs) == 0 {
			return nil, fmt.Errorf("channel creation of %s: the request names no member organization, but consortium %q has members", req.ChannelID, req.Consortium)
		}
		for _, org := range req.Orgs {
			g := consortium.Groups[org]
			if g == nil {
				return nil, fmt.Errorf("channel creation of %s: organization %s is not a member of consortium %q", req.ChannelID, org, req.Consortium)
			}
			app.Groups[org] = proto.Clone(g).(*cb.ConfigGroup)
		}
	}

	root := newGroup()
	for k, v := range sysRoot.Values {
		root.Values[k] = proto.Clone(v).(*cb.ConfigValue)
	}
	for k, p := range sysRoot.Policies {
		root.Policies[k] = proto.Clone(p).(*cb.ConfigPolicy)
	}
	ord := sysRoot.Groups[OrdererGroup]
	if ord == nil {
		return nil, errors.New("channel creation: the system channel has no Orderer group")
	}
	root.Groups[OrdererGroup] = proto.Clone(ord).(*cb.ConfigGroup)
	root.Groups[ApplicationGroup] = app
	name, err := proto.Marshal(&cb.Consortium{Name: req.Consortium})
	if err != nil {
		return nil, err
	}
	root.Values[ConsortiumValue] = &cb.ConfigValue{Value: name, ModPolicy: AdminsPolicy}

	// From V1_1 on the template is predictable: every version starts at 0 and the root's
	// mod_policy is the system channel's, so the same request gives the same channel on every
	// orderer whatever the system channel's history.
	if ordererCaps["V1_1"] || ordererCaps["V1_4_2"] || ordererCaps["V2_0"] {
		root.ModPolicy = sysRoot.ModPolicy
		zeroVersions(root)
	}
	return &cb.Config{ChannelGroup: root}, nil
}

func newGroup() *cb.ConfigGroup {
	return &cb.ConfigGroup{
		Groups:   map[string]*cb.ConfigGroup{},
		Values:   map[string]*cb.ConfigValue{},
		Policies: map[string]*cb.ConfigPolicy{},
	}
}

func zeroVersions(g *cb.ConfigGroup) {
	g.Version = 0
	for _, v := range g.Values {
		v.Version = 0
	}
	for _, p := range g.Policies {
		p.Version = 0
	}
	for _, sub := range g.Groups {
		zeroVersions(sub)
	}
}
