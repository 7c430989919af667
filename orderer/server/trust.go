package server

import (
	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// mspTLSRoots collects the TLS root and intermediate certificates of every Fabric MSP of a
// channel config: its orderer organisations, application organisations and (on the system
// channel) consortium members. With client authentication required, Fabric's orderer trusts
// these in addition to General.TLS.ClientRootCAs, so that peers and clients of the channels it
// serves connect with their organisations' TLS certificates; kord does the same.
func mspTLSRoots(cfg *cb.Config) [][]byte {
	var out [][]byte
	root := cfg.GetChannelGroup()
	if root == nil {
		return nil
	}
	orgsOf := func(g *cb.ConfigGroup) {
		for _, org := range g.GetGroups() {
			v, ok := org.GetValues()["MSP"]
			if !ok {
				continue
			}
			mc := &mspproto.MSPConfig{}
			if err := proto.Unmarshal(v.GetValue(), mc); err != nil || mc.Type != 0 {
				continue // not a Fabric MSP (type 0)
			}
			fc := &mspproto.FabricMSPConfig{}
			if err := proto.Unmarshal(mc.Config, fc); err != nil {
				continue
			}
			out = append(out, fc.TlsRootCerts...)
			out = append(out, fc.TlsIntermediateCerts...)
		}
	}
	if g, ok := root.GetGroups()["Orderer"]; ok {
		orgsOf(g)
	}
	if g, ok := root.GetGroups()["Application"]; ok {
		orgsOf(g)
	}
	if g, ok := root.GetGroups()["Consortiums"]; ok {
		for _, consortium := range g.GetGroups() {
			orgsOf(consortium)
		}
	}
	return out
}
