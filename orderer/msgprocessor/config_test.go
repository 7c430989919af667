package msgprocessor

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/golang/protobuf/ptypes/timestamp"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// TestChannelCreationPath covers the system channel's decisions on creation requests that do
// not depend on Kafka: the MaxChannels limit (Fabric counts existing channels, system channel
// included, and refuses once the count is above the limit), a request signed by an admin of
// the consortium, and its re-processing.
func TestChannelCreationPath(t *testing.T) {
	dir := t.TempDir()
	spec := mspgen.DefaultSpec()
	if err := mspgen.Generate(dir, spec); err != nil {
		t.Fatal(err)
	}
	p := genesis.DevProfile(dir, spec, []string{"127.0.0.1:9092"}, []string{"127.0.0.1:7050"})
	p.MaxChannels = 2
	blk, err := genesis.SystemChannelBlock(p)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := channelconfig.FromBlock(blk)
	if err != nil {
		t.Fatal(err)
	}
	if sys.MaxChannels != 2 {
		t.Fatalf("MaxChannels = %d", sys.MaxChannels)
	}
	org1 := spec.PeerOrgs[0]
	admin, err := msp.LoadSigner(mspgen.UserMSPDir(mspgen.PeerOrgDir(dir, org1.Domain), org1.Domain, mspgen.AdminUser), org1.MSPID)
	if err != nil {
		t.Fatal(err)
	}
	ordDir := mspgen.OrdererOrgDir(dir, spec.OrdererOrgs[0].Domain)
	orderer, err := msp.LoadSigner(mspgen.OrdererMSPDir(ordDir, spec.OrdererOrgs[0].Domain, "orderer0"), spec.OrdererOrgs[0].MSPID)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := genesis.ChannelCreateTx(p, "newchan")
	if err != nil {
		t.Fatal(err)
	}
	req, err := client.SignConfigUpdate(tx, admin)
	if err != nil {
		t.Fatal(err)
	}
	proc := &Processor{Signer: orderer}

	if _, err := proc.ProcessChannelCreation(sys, req, 3); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "limit of 2 channels") {
		t.Fatalf("3 channels, limit 2: %v", err)
	}
	out, err := proc.ProcessChannelCreation(sys, req, 2)
	if err != nil {
		t.Fatalf("2 channels, limit 2: %v", err)
	}
	// Both envelopes the orderer built have the channel header Fabric's orderer writes.
	inner := checkOrdererHeader(t, out, cb.HeaderType_ORDERER_TRANSACTION, sys.ChannelID, orderer)
	innerEnv := &cb.Envelope{}
	if err := proto.Unmarshal(inner, innerEnv); err != nil {
		t.Fatal(err)
	}
	checkOrdererHeader(t, innerEnv, cb.HeaderType_CONFIG, "newchan", orderer)
	// The ORDERER_TRANSACTION carries a config the new channel can run on.
	again, err := proc.ReprocessConfig(sys, out)
	if err != nil {
		t.Fatalf("re-processing the ORDERER_TRANSACTION: %v", err)
	}
	if again == nil || len(again.Payload) == 0 {
		t.Fatal("re-processing gave no envelope")
	}
}

// checkOrdererHeader checks that env is signed by s and that its channel header has what
// Fabric's orderer puts in the envelopes it builds and nothing more: type, channel and a
// whole-second timestamp; no transaction ID, version or epoch. It returns the payload's data.
func checkOrdererHeader(t *testing.T, env *cb.Envelope, typ cb.HeaderType, channelID string, s Signer) []byte {
	t.Helper()
	p := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, p); err != nil || p.Header == nil {
		t.Fatalf("%s: payload: %v", typ, err)
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(p.Header.ChannelHeader, chdr); err != nil {
		t.Fatal(err)
	}
	want := &cb.ChannelHeader{Type: int32(typ), ChannelId: channelID, Timestamp: &timestamp.Timestamp{Seconds: chdr.GetTimestamp().GetSeconds()}}
	if !proto.Equal(chdr, want) || chdr.GetTimestamp().GetSeconds() == 0 {
		t.Errorf("%s channel header = %v, want %v", typ, chdr, want)
	}
	sh := &cb.SignatureHeader{}
	if err := proto.Unmarshal(p.Header.SignatureHeader, sh); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sh.Creator, s.Serialize()) || len(sh.Nonce) == 0 {
		t.Errorf("%s signature header: creator is not the orderer or no nonce", typ)
	}
	return p.Data
}
