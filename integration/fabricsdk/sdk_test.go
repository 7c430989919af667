package fabricsdk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
	pb "github.com/hyperledger/fabric-protos-go/peer"
	mspclient "github.com/hyperledger/fabric-sdk-go/pkg/client/msp"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/resmgmt"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/errors/retry"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/context"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/fab"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/msp"
	contextImpl "github.com/hyperledger/fabric-sdk-go/pkg/context"
	"github.com/hyperledger/fabric-sdk-go/pkg/core/config"
	"github.com/hyperledger/fabric-sdk-go/pkg/fab/resource"
	"github.com/hyperledger/fabric-sdk-go/pkg/fabsdk"
)

const (
	channelID   = "sdkchannel"
	ordererName = "orderer.example.com" // the orderer's key in the connection profile
)

func TestSDKCreatesChannelAndFetchesGenesis(t *testing.T) {
	k := startKord(t)

	// The channel-creation tx comes from kordctl as it would from configtxgen: unsigned.
	// Signing it is the SDK's job.
	txFile := filepath.Join(k.dir, channelID+".tx")
	k.ctl(t, "genesis", "channel-tx", "--spec", filepath.Join(k.dir, "network.yaml"), "--channel", channelID, "--out", txFile)

	sdk, err := fabsdk.New(config.FromRaw(k.connectionProfile(t.TempDir()), "yaml"))
	if err != nil {
		t.Fatalf("fabsdk.New: %v", err)
	}
	defer sdk.Close()
	adminCtx := sdk.Context(fabsdk.WithUser("Admin"), fabsdk.WithOrg("org1"))
	rc, err := resmgmt.New(adminCtx)
	if err != nil {
		t.Fatalf("resmgmt.New: %v", err)
	}
	mc, err := mspclient.New(sdk.Context(), mspclient.WithOrg("org1"))
	if err != nil {
		t.Fatalf("msp client: %v", err)
	}
	admin, err := mc.GetSigningIdentity("Admin")
	if err != nil {
		t.Fatalf("Org1 admin identity: %v", err)
	}

	// Create the channel. The SDK signs the CONFIG_UPDATE with the admin's identity, wraps it
	// in an envelope signed by the same admin and broadcasts it; SUCCESS means kord accepted
	// it into the system channel.
	resp, err := rc.SaveChannel(resmgmt.SaveChannelRequest{
		ChannelID:         channelID,
		ChannelConfigPath: txFile,
		SigningIdentities: []msp.SigningIdentity{admin},
	}, resmgmt.WithOrdererEndpoint(ordererName), resmgmt.WithRetry(retry.DefaultResMgmtOpts))
	if err != nil {
		t.Fatalf("SaveChannel (create %s): %v", channelID, err)
	}
	if resp.TransactionID == "" {
		t.Fatal("SaveChannel returned no transaction ID")
	}
	t.Logf("channel creation tx %s", resp.TransactionID)

	// Block 0 through the SDK's Deliver client (what JoinChannel uses). The channel appears
	// asynchronously once kord consumed the creation from Kafka, so NOT_FOUND is retried.
	genesis := genesisBlock(t, adminCtx)
	if genesis.Header.Number != 0 {
		t.Fatalf("asked for block 0, got block %d", genesis.Header.Number)
	}
	if len(genesis.Data.Data) != 1 {
		t.Fatalf("genesis block has %d transactions, want 1", len(genesis.Data.Data))
	}
	hdr, cfgEnv := configEnvelope(t, genesis.Data.Data[0])
	if hdr.ChannelId != channelID || cb.HeaderType(hdr.Type) != cb.HeaderType_CONFIG {
		t.Fatalf("genesis transaction is %v for channel %q, want CONFIG for %q", cb.HeaderType(hdr.Type), hdr.ChannelId, channelID)
	}
	// As in Fabric, the genesis config is the creation update applied to the template
	// (sequence 0), hence sequence 1.
	if cfgEnv.Config.Sequence != 1 {
		t.Fatalf("genesis config sequence %d, want 1", cfgEnv.Config.Sequence)
	}
	// The config's last update is the SDK's own request: same transaction ID.
	if id := updateTxID(t, cfgEnv.LastUpdate); id != string(resp.TransactionID) {
		t.Fatalf("genesis config was made from update tx %q, the SDK sent %q", id, resp.TransactionID)
	}

	// The same block as any other client gets it: kordctl's fetch of block 0, compared field
	// by field as bytes (header, every transaction, every metadata slot).
	kordFile := filepath.Join(k.dir, "kordctl-0.block")
	k.ctl(t, "channel", "fetch", "0", "-c", channelID, "-o", k.addr, "--msp-dir", k.org1AdminMSP(), "--msp-id", "Org1MSP", "--out", kordFile)
	raw, err := os.ReadFile(kordFile)
	if err != nil {
		t.Fatal(err)
	}
	viaKordctl := &cb.Block{}
	if err := proto.Unmarshal(raw, viaKordctl); err != nil {
		t.Fatalf("kordctl's block: %v", err)
	}
	sameBlock(t, genesis, viaKordctl)

	// The SDK's config path: newest block, its LAST_CONFIG, that block, parsed into the
	// SDK's channel config. (Its Orderers() reads only the legacy channel-level
	// OrdererAddresses, which Fabric 2.x configs, like kord's, leave to the orderer orgs'
	// Endpoints; so it is not checked.)
	cfg, err := rc.QueryConfigFromOrderer(channelID, resmgmt.WithOrdererEndpoint(ordererName))
	if err != nil {
		t.Fatalf("QueryConfigFromOrderer: %v", err)
	}
	if cfg.ID() != channelID || cfg.BlockNumber() != 0 {
		t.Fatalf("SDK reads config of %q at block %d, want %q at block 0", cfg.ID(), cfg.BlockNumber(), channelID)
	}
	mspIDs := map[string]bool{}
	for _, m := range cfg.MSPs() {
		mspIDs[mspName(t, m.Config)] = true
	}
	for _, want := range []string{"Org1MSP", "Org2MSP", "OrdererMSP"} {
		if !mspIDs[want] {
			t.Errorf("channel config lacks MSP %s (has %v)", want, mspIDs)
		}
	}

	// An update the SDK computes itself: Org1 gets an anchor peer. The SDK diffs the old and
	// new configs into a CONFIG_UPDATE; kord must accept Org1's admin signature under the
	// org's Admins mod_policy, order the config block alone and point LAST_CONFIG at it.
	updateEnv := anchorPeerUpdate(t, genesis, "peer0.org1.example.com", 7051)
	if _, err := rc.SaveChannel(resmgmt.SaveChannelRequest{
		ChannelID:         channelID,
		ChannelConfig:     bytes.NewReader(updateEnv),
		SigningIdentities: []msp.SigningIdentity{admin},
	}, resmgmt.WithOrdererEndpoint(ordererName), resmgmt.WithRetry(retry.DefaultResMgmtOpts)); err != nil {
		t.Fatalf("SaveChannel (anchor-peer update): %v", err)
	}
	cfg = waitConfig(t, rc, 1)
	genesisConfig, err := resource.ExtractConfigFromBlock(genesis)
	if err != nil {
		t.Fatal(err)
	}
	org1, _ := applicationOrg(t, genesisConfig, "Org1MSP") // the SDK names anchor peers' orgs by group
	anchors := cfg.AnchorPeers()
	if len(anchors) != 1 || anchors[0].Org != org1 || anchors[0].Host != "peer0.org1.example.com" || anchors[0].Port != 7051 {
		for _, a := range anchors {
			t.Logf("anchor peer %+v", *a)
		}
		t.Fatalf("after the update: %d anchor peers, want only %s's peer0.org1.example.com:7051", len(anchors), org1)
	}
	block1, err := rc.QueryConfigBlockFromOrderer(channelID, resmgmt.WithOrdererEndpoint(ordererName))
	if err != nil {
		t.Fatalf("QueryConfigBlockFromOrderer: %v", err)
	}
	if block1.Header.Number != 1 || len(block1.Data.Data) != 1 {
		t.Fatalf("config block after the update: number %d with %d transactions, want block 1 alone", block1.Header.Number, len(block1.Data.Data))
	}
	if _, env := configEnvelope(t, block1.Data.Data[0]); env.Config.Sequence != 2 {
		t.Fatalf("config sequence after the update is %d, want 2", env.Config.Sequence)
	}
}

// genesisBlock asks the orderer for block 0 of the channel through the SDK, retrying for a
// bounded time while kord has not created it yet.
func genesisBlock(t *testing.T, adminCtx context.ClientProvider) *cb.Block {
	t.Helper()
	client, err := adminCtx()
	if err != nil {
		t.Fatalf("SDK client context: %v", err)
	}
	ocfg, found, _ := client.EndpointConfig().OrdererConfig(ordererName)
	if !found {
		t.Fatalf("orderer %s not in the connection profile", ordererName)
	}
	orderer, err := client.InfraProvider().CreateOrdererFromConfig(ocfg)
	if err != nil {
		t.Fatalf("SDK orderer: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		reqCtx, cancel := contextImpl.NewRequest(client, contextImpl.WithTimeout(15*time.Second))
		block, err := resource.GenesisBlockFromOrderer(reqCtx, channelID, orderer)
		cancel()
		if err == nil {
			return block
		}
		if time.Now().After(deadline) {
			t.Fatalf("block 0 of %s through the SDK: %v", channelID, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitConfig polls the SDK's view of the channel config until it is the one of block
// number n (the update is ordered asynchronously after Broadcast's SUCCESS).
func waitConfig(t *testing.T, rc *resmgmt.Client, n uint64) fab.ChannelCfg {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		cfg, err := rc.QueryConfigFromOrderer(channelID, resmgmt.WithOrdererEndpoint(ordererName))
		if err == nil && cfg.BlockNumber() == n {
			return cfg
		}
		if time.Now().After(deadline) {
			if err == nil {
				t.Fatalf("config block is still %d, want %d", cfg.BlockNumber(), n)
			}
			t.Fatalf("QueryConfigFromOrderer: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// anchorPeerUpdate builds, from the channel's current config, the CONFIG_UPDATE envelope
// that adds an anchor peer to Org1, as `configtxgen -outputAnchorPeersUpdate` would, but
// computed by the SDK (resmgmt.CalculateConfigUpdate). The envelope is unsigned; SaveChannel
// signs it.
func anchorPeerUpdate(t *testing.T, configBlock *cb.Block, host string, port int32) []byte {
	t.Helper()
	current, err := resource.ExtractConfigFromBlock(configBlock)
	if err != nil {
		t.Fatalf("config from block: %v", err)
	}
	updated := proto.Clone(current).(*cb.Config)
	_, org := applicationOrg(t, updated, "Org1MSP")
	anchors, err := proto.Marshal(&pb.AnchorPeers{AnchorPeers: []*pb.AnchorPeer{{Host: host, Port: port}}})
	if err != nil {
		t.Fatal(err)
	}
	org.Values["AnchorPeers"] = &cb.ConfigValue{Value: anchors, ModPolicy: "Admins"}
	update, err := resmgmt.CalculateConfigUpdate(channelID, current, updated)
	if err != nil {
		t.Fatalf("CalculateConfigUpdate: %v", err)
	}
	return marshal(t, &cb.Envelope{Payload: marshal(t, &cb.Payload{
		Header: &cb.Header{ChannelHeader: marshal(t, &cb.ChannelHeader{Type: int32(cb.HeaderType_CONFIG_UPDATE), ChannelId: channelID})},
		Data:   marshal(t, &cb.ConfigUpdateEnvelope{ConfigUpdate: marshal(t, update)}),
	})})
}

// applicationOrg finds an application org's config group by MSP ID: group names are the
// org names of configtx.yaml (kord's dev network says Org1), not MSP IDs.
func applicationOrg(t *testing.T, c *cb.Config, mspID string) (string, *cb.ConfigGroup) {
	t.Helper()
	for name, g := range c.GetChannelGroup().GetGroups()["Application"].GetGroups() {
		v, ok := g.Values["MSP"]
		if !ok {
			continue
		}
		m := &mspproto.MSPConfig{}
		unmarshal(t, v.Value, m)
		if mspName(t, m.Config) == mspID {
			return name, g
		}
	}
	t.Fatalf("no application org with MSP ID %s in the channel config", mspID)
	return "", nil
}

// configEnvelope opens a CONFIG transaction: its channel header and config envelope.
func configEnvelope(t *testing.T, envBytes []byte) (*cb.ChannelHeader, *cb.ConfigEnvelope) {
	t.Helper()
	env, payload, hdr, cfgEnv := &cb.Envelope{}, &cb.Payload{}, &cb.ChannelHeader{}, &cb.ConfigEnvelope{}
	unmarshal(t, envBytes, env)
	unmarshal(t, env.Payload, payload)
	if payload.Header == nil {
		t.Fatal("transaction without header")
	}
	unmarshal(t, payload.Header.ChannelHeader, hdr)
	unmarshal(t, payload.Data, cfgEnv)
	if cfgEnv.Config == nil || cfgEnv.LastUpdate == nil {
		t.Fatalf("config envelope without config or last update (type %v)", cb.HeaderType(hdr.Type))
	}
	return hdr, cfgEnv
}

// updateTxID is the transaction ID in the channel header of a CONFIG_UPDATE envelope.
func updateTxID(t *testing.T, env *cb.Envelope) string {
	t.Helper()
	payload, hdr := &cb.Payload{}, &cb.ChannelHeader{}
	unmarshal(t, env.Payload, payload)
	if payload.Header == nil {
		t.Fatal("last update without header")
	}
	unmarshal(t, payload.Header.ChannelHeader, hdr)
	if cb.HeaderType(hdr.Type) != cb.HeaderType_CONFIG_UPDATE {
		t.Fatalf("last update is %v, want CONFIG_UPDATE", cb.HeaderType(hdr.Type))
	}
	return hdr.TxId
}

// sameBlock compares two copies of a block as bytes, field by field (re-marshalling the
// whole block could hide or invent differences between protobuf libraries).
func sameBlock(t *testing.T, a, b *cb.Block) {
	t.Helper()
	if a.Header.Number != b.Header.Number || !bytes.Equal(a.Header.PreviousHash, b.Header.PreviousHash) || !bytes.Equal(a.Header.DataHash, b.Header.DataHash) {
		t.Fatalf("block headers differ: SDK %+v, kordctl %+v", a.Header, b.Header)
	}
	if len(a.Data.Data) != len(b.Data.Data) {
		t.Fatalf("SDK block has %d transactions, kordctl's %d", len(a.Data.Data), len(b.Data.Data))
	}
	for i := range a.Data.Data {
		if !bytes.Equal(a.Data.Data[i], b.Data.Data[i]) {
			t.Fatalf("transaction %d differs", i)
		}
	}
	if len(a.Metadata.Metadata) != len(b.Metadata.Metadata) {
		t.Fatalf("SDK block has %d metadata slots, kordctl's %d", len(a.Metadata.Metadata), len(b.Metadata.Metadata))
	}
	for i := range a.Metadata.Metadata {
		if !bytes.Equal(a.Metadata.Metadata[i], b.Metadata.Metadata[i]) {
			t.Fatalf("metadata slot %d differs", i)
		}
	}
}

// mspName is the MSP ID inside an MSPConfig (Fabric MSPs only, which is all kord writes).
func mspName(t *testing.T, raw []byte) string {
	t.Helper()
	fmc := &mspproto.FabricMSPConfig{}
	unmarshal(t, raw, fmc)
	return fmc.Name
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unmarshal(t *testing.T, b []byte, m proto.Message) {
	t.Helper()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("unmarshal %T: %v", m, err)
	}
}
