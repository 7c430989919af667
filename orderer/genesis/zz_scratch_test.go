package genesis

import (
	"fmt"
	"os"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

func dumpGroup(prefix string, g *cb.ConfigGroup) {
	fmt.Printf("%s mod=%q ver=%d\n", prefix, g.ModPolicy, g.Version)
	for k, v := range g.Values {
		fmt.Printf("%s  V %s mod=%q len=%d\n", prefix, k, v.ModPolicy, len(v.Value))
		if k == "MSP" {
			m := &mspproto.MSPConfig{}
			proto.Unmarshal(v.Value, m)
			f := &mspproto.FabricMSPConfig{}
			proto.Unmarshal(m.Config, f)
			fmt.Printf("%s    type=%d name=%s roots=%d inter=%d admins=%d tlsroots=%d ous=%d nodeous=%v crypto=%v\n", prefix, m.Type, f.Name, len(f.RootCerts), len(f.IntermediateCerts), len(f.Admins), len(f.TlsRootCerts), len(f.OrganizationalUnitIdentifiers), f.FabricNodeOus != nil, f.CryptoConfig)
			if f.FabricNodeOus != nil {
				fmt.Printf("%s    client=%s\n", prefix, f.FabricNodeOus.ClientOuIdentifier.OrganizationalUnitIdentifier)
			}
		}
	}
	for k, p := range g.Policies {
		fmt.Printf("%s  P %s mod=%q type=%d\n", prefix, k, p.ModPolicy, p.Policy.Type)
	}
	for k, sg := range g.Groups {
		dumpGroup(prefix+"/"+k, sg)
	}
}

func TestScratch(t *testing.T) {
	raw, _ := os.ReadFile("/work/shared/conformance/basic-cutting/genesis.block")
	b := &cb.Block{}
	if err := proto.Unmarshal(raw, b); err != nil {
		t.Fatal(err)
	}
	env := &cb.Envelope{}
	proto.Unmarshal(b.Data.Data[0], env)
	pl := &cb.Payload{}
	proto.Unmarshal(env.Payload, pl)
	ch := &cb.ChannelHeader{}
	proto.Unmarshal(pl.Header.ChannelHeader, ch)
	fmt.Printf("chdr %v\n", ch)
	sh := &cb.SignatureHeader{}
	proto.Unmarshal(pl.Header.SignatureHeader, sh)
	fmt.Printf("shdr creator=%d nonce=%d meta=%d\n", len(sh.Creator), len(sh.Nonce), len(b.Metadata.Metadata))
	ce := &cb.ConfigEnvelope{}
	proto.Unmarshal(pl.Data, ce)
	dumpGroup("Channel", ce.Config.ChannelGroup)

	raw, _ = os.ReadFile("/work/shared/conformance/basic-cutting/channel-create/mychannel.tx")
	proto.Unmarshal(raw, env)
	proto.Unmarshal(env.Payload, pl)
	proto.Unmarshal(pl.Header.ChannelHeader, ch)
	fmt.Printf("tx chdr %v sig=%d\n", ch, len(env.Signature))
	proto.Unmarshal(pl.Header.SignatureHeader, sh)
	fmt.Printf("tx shdr creator=%d nonce=%d\n", len(sh.Creator), len(sh.Nonce))
	cue := &cb.ConfigUpdateEnvelope{}
	proto.Unmarshal(pl.Data, cue)
	cu := &cb.ConfigUpdate{}
	proto.Unmarshal(cue.ConfigUpdate, cu)
	fmt.Printf("cu ch=%s sigs=%d\n", cu.ChannelId, len(cue.Signatures))
	dumpGroup("RS", cu.ReadSet)
	dumpGroup("WS", cu.WriteSet)
}
