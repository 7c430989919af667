package integration

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	fconfigtx "github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/kafka"
	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// configOf fetches the current config of a channel from o.
func (nw *network) configOf(ctx context.Context, o *orderer, channelID string) (*channelconfig.Values, *cb.Block) {
	nw.t.Helper()
	conn := o.dial()
	defer conn.Close()
	b, err := client.FetchConfigBlock(ctx, conn, nw.user, channelID)
	if err != nil {
		nw.t.Fatalf("%s: config block of %s: %v", o.name, channelID, err)
	}
	v, err := channelconfig.FromBlock(b)
	if err != nil {
		nw.t.Fatal(err)
	}
	return v, b
}

// update computes a config update of channelID with edit, signs it with signers and sends
// it to o.
func (nw *network) update(ctx context.Context, o *orderer, channelID string, edit func(*fconfigtx.ConfigTx) error, signers ...client.Signer) *ab.BroadcastResponse {
	nw.t.Helper()
	cfg, _ := nw.configOf(ctx, o, channelID)
	env, err := client.ComputeUpdate(cfg.Config, channelID, edit)
	if err != nil {
		nw.t.Fatal(err)
	}
	return nw.broadcastConfig(ctx, o, env, signers...)
}

// waitHeight waits until every orderer serves at least h blocks of channelID.
func (nw *network) waitHeight(ctx context.Context, channelID string, h uint64) {
	nw.t.Helper()
	for _, o := range nw.orderers {
		o.waitBlock(ctx, nw.user, channelID, h-1)
	}
}

func lastConfig(t *testing.T, b *cb.Block) uint64 {
	t.Helper()
	n, err := blocks.LastConfigIndex(b)
	if err != nil {
		t.Fatalf("block %d: %v", b.Header.Number, err)
	}
	return n
}

// TestChannelLifecycle creates a channel through one orderer of three, orders on it, updates
// its anchor peers and its batch size, and restarts an orderer: every orderer writes the same
// chain, config blocks are isolated and LAST_CONFIG follows them, and the new batch size cuts
// the blocks that follow.
func TestChannelLifecycle(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ch = "chan-a"

	// Created through orderer1: any orderer accepts channel creation, every one creates it.
	resp := nw.broadcastCreation(ctx, nw.orderers[1], ch, nw.profile, nw.admin(0))
	if resp.Status != cb.Status_SUCCESS {
		t.Fatalf("channel creation: %s: %s", resp.Status, resp.Info)
	}
	nw.waitHeight(ctx, ch, 1)
	for _, o := range nw.orderers {
		o.waitReady()
	}
	genesisBlocks := nw.collectAll(ch)
	nw.verifyChains(ch, genesisBlocks)
	if v, err := channelconfig.FromBlock(genesisBlocks[0][0]); err != nil || v.ChannelID != ch || v.Sequence != 1 {
		t.Fatalf("block 0 of %s: config %+v, err %v", ch, v, err)
	}

	conn := nw.orderers[2].dial()
	defer conn.Close()
	r := broadcastStream(ctx, conn, nw.user, ch, 25, payloads(1, 0), nil)
	if len(r.acked) != 25 {
		t.Fatalf("load on %s: %v", ch, r)
	}

	// Org1's admin adds an anchor peer: an Org1 value, under Org1's Admins policy.
	resp = nw.update(ctx, nw.orderers[0], ch, func(tx *fconfigtx.ConfigTx) error {
		return tx.Application().Organization("Org1").AddAnchorPeer(fconfigtx.Address{Host: "peer0.org1.example.com", Port: 7051})
	}, nw.admin(0))
	if resp.Status != cb.Status_SUCCESS {
		t.Fatalf("anchor-peer update: %s: %s", resp.Status, resp.Info)
	}
	cfg, cfgBlock := nw.configOf(ctx, nw.orderers[1], ch)
	if cfg.Sequence != 2 {
		t.Fatalf("config sequence after the anchor-peer update = %d, want 2", cfg.Sequence)
	}
	if txs := blockTxs(cfgBlock); len(txs) != 1 || txs[0].headerType != cb.HeaderType_CONFIG {
		t.Fatalf("config block %d holds %v, want one CONFIG envelope alone", cfgBlock.Header.Number, txs)
	}
	if got := lastConfig(t, cfgBlock); got != cfgBlock.Header.Number {
		t.Fatalf("config block %d: LAST_CONFIG = %d, want itself", cfgBlock.Header.Number, got)
	}

	// The batch size is the orderer organization's to change.
	resp = nw.update(ctx, nw.orderers[0], ch, func(tx *fconfigtx.ConfigTx) error {
		return tx.Orderer().BatchSize().SetMaxMessageCount(3)
	}, nw.ordererAdmin())
	if resp.Status != cb.Status_SUCCESS {
		t.Fatalf("batch-size update: %s: %s", resp.Status, resp.Info)
	}
	cfg, cfgBlock = nw.configOf(ctx, nw.orderers[2], ch)
	if cfg.BatchSize.MaxMessageCount != 3 || cfg.Sequence != 3 {
		t.Fatalf("after the batch-size update: MaxMessageCount %d, sequence %d", cfg.BatchSize.MaxMessageCount, cfg.Sequence)
	}
	r = broadcastStream(ctx, conn, nw.user, ch, 7, payloads(2, 0), nil)
	if len(r.acked) != 7 {
		t.Fatalf("load after the batch-size update: %v", r)
	}
	want := map[string]string{}
	ackedSet(t, want, []streamResult{r})
	chains := nw.collectChains(ch, want, time.Minute)
	nw.verifyChains(ch, chains)
	var sizes []int
	for _, b := range chains[0][cfgBlock.Header.Number+1:] {
		sizes = append(sizes, len(b.Data.Data))
		if got := lastConfig(t, b); got != cfgBlock.Header.Number {
			t.Errorf("block %d: LAST_CONFIG = %d, want %d", b.Header.Number, got, cfgBlock.Header.Number)
		}
	}
	// 7 envelopes sent back to back under MaxMessageCount 3: two full blocks and a timed one.
	// (An envelope may also be cut by time earlier; none may exceed 3.)
	total := 0
	for _, n := range sizes {
		if n > 3 {
			t.Errorf("block of %d envelopes after MaxMessageCount became 3 (sizes %v)", n, sizes)
		}
		total += n
	}
	if total != 7 || sizes[0] != 3 {
		t.Errorf("blocks after the batch-size update have sizes %v, want 3, 3, 1", sizes)
	}

	// A restarted orderer reopens every channel from its ledger and catches up.
	o := nw.orderers[2]
	o.stop()
	o.start()
	o.waitReady()
	for _, id := range []string{ch, "syschannel"} {
		nw.verifyChains(id, nw.collectAll(id))
	}
}

// TestChannelRefusals sends each kind of bad channel creation and config update: each gets
// its status and a reason that names the problem, and the orderer keeps serving.
func TestChannelRefusals(t *testing.T) {
	nw := newNetwork(t, 1)
	nw.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := nw.orderers[0]
	nw.createChannel("chan-b")

	// An organization that is not in the consortium, with its own crypto material.
	other := mspgen.Spec{PeerOrgs: []mspgen.OrgSpec{{Name: "Org3", MSPID: "Org3MSP", Domain: "org3.example.com", Nodes: []string{"peer0"}, Users: []string{"User1"}}}}
	otherDir := t.TempDir()
	if err := mspgen.Generate(otherDir, other); err != nil {
		t.Fatal(err)
	}
	org3Dir := mspgen.PeerOrgDir(otherDir, "org3.example.com")
	org3Admin, err := msp.LoadSigner(mspgen.UserMSPDir(org3Dir, "org3.example.com", mspgen.AdminUser), "Org3MSP")
	if err != nil {
		t.Fatal(err)
	}
	withOrg3 := nw.profile
	withOrg3.ConsortiumOrgs = append(append([]genesis.OrgSpec{}, nw.profile.ConsortiumOrgs...), genesis.OrgSpec{Name: "Org3", ID: "Org3MSP", MSPDir: mspgen.OrgMSPDir(org3Dir)})
	unknownConsortium := nw.profile
	unknownConsortium.Consortium = "NoSuchConsortium"

	cases := []struct {
		name   string
		send   func() *ab.BroadcastResponse
		status cb.Status
		reason string
	}{
		{"existing channel", func() *ab.BroadcastResponse {
			return nw.broadcastCreation(ctx, o, "chan-b", nw.profile, nw.admin(0))
		}, cb.Status_BAD_REQUEST, "already exists"},
		{"unknown consortium", func() *ab.BroadcastResponse {
			return nw.broadcastCreation(ctx, o, "chan-c", unknownConsortium, nw.admin(0))
		}, cb.Status_BAD_REQUEST, `consortium "NoSuchConsortium" is not defined`},
		{"non-member organization", func() *ab.BroadcastResponse {
			return nw.broadcastCreation(ctx, o, "chan-d", withOrg3, nw.admin(0))
		}, cb.Status_BAD_REQUEST, "Org3 is not a member of consortium"},
		{"no admin signature", func() *ab.BroadcastResponse {
			return nw.broadcastCreation(ctx, o, "chan-e", nw.profile, nw.user)
		}, cb.Status_BAD_REQUEST, "not satisfied"},
		{"invalid channel ID", func() *ab.BroadcastResponse {
			return nw.broadcastCreation(ctx, o, "Bad_Channel", nw.profile, nw.admin(0))
		}, cb.Status_BAD_REQUEST, "channel ID"},
		{"anchor peers signed by a non-admin", func() *ab.BroadcastResponse {
			return nw.update(ctx, o, "chan-b", func(tx *fconfigtx.ConfigTx) error {
				return tx.Application().Organization("Org1").AddAnchorPeer(fconfigtx.Address{Host: "p", Port: 1})
			}, nw.user)
		}, cb.Status_BAD_REQUEST, "not satisfied"},
		{"anchor peers of Org1 signed by Org2's admin", func() *ab.BroadcastResponse {
			return nw.update(ctx, o, "chan-b", func(tx *fconfigtx.ConfigTx) error {
				return tx.Application().Organization("Org1").AddAnchorPeer(fconfigtx.Address{Host: "p", Port: 1})
			}, nw.admin(1))
		}, cb.Status_BAD_REQUEST, "not satisfied"},
		{"batch size signed by an application admin", func() *ab.BroadcastResponse {
			return nw.update(ctx, o, "chan-b", func(tx *fconfigtx.ConfigTx) error {
				return tx.Orderer().BatchSize().SetMaxMessageCount(2)
			}, nw.admin(0))
		}, cb.Status_BAD_REQUEST, "not satisfied"},
		{"update by an organization outside the channel", func() *ab.BroadcastResponse {
			return nw.update(ctx, o, "chan-b", func(tx *fconfigtx.ConfigTx) error {
				return tx.Orderer().BatchSize().SetMaxMessageCount(2)
			}, org3Admin)
		}, cb.Status_FORBIDDEN, "/Channel/Writers"},
		{"consensus type change", func() *ab.BroadcastResponse {
			return nw.update(ctx, o, "chan-b", func(tx *fconfigtx.ConfigTx) error {
				return tx.Orderer().SetConsensusState("STATE_MAINTENANCE")
			}, nw.ordererAdmin())
		}, cb.Status_BAD_REQUEST, "maintenance"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := c.send()
			if resp.Status != c.status || !strings.Contains(resp.Info, c.reason) {
				t.Fatalf("got %s %q; want %s with a reason containing %q", resp.Status, resp.Info, c.status, c.reason)
			}
			t.Logf("%s: %s", resp.Status, resp.Info)
		})
	}

	// An update computed from an outdated config: applied once, refused the second time.
	cfg, _ := nw.configOf(ctx, o, "chan-b")
	env, err := client.ComputeUpdate(cfg.Config, "chan-b", func(tx *fconfigtx.ConfigTx) error {
		return tx.Orderer().BatchSize().SetMaxMessageCount(4)
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp := nw.broadcastConfig(ctx, o, env, nw.ordererAdmin()); resp.Status != cb.Status_SUCCESS {
		t.Fatalf("batch-size update: %s %s", resp.Status, resp.Info)
	}
	nw.waitHeight(ctx, "chan-b", 2)
	if resp := nw.broadcastConfig(ctx, o, env, nw.ordererAdmin()); resp.Status != cb.Status_BAD_REQUEST || !strings.Contains(resp.Info, "version") {
		t.Fatalf("replayed update: %s %q; want BAD_REQUEST naming the version", resp.Status, resp.Info)
	}

	// Still serving.
	conn := o.dial()
	defer conn.Close()
	if r := broadcastStream(ctx, conn, nw.user, "chan-b", 3, payloads(3, 0), nil); len(r.acked) != 3 {
		t.Fatalf("after the refusals: %v", r)
	}
}

// TestRevalidationAfterConfigUpdate injects, after a config update that revoked Org1 users'
// write permission, two records validated under the previous config: one by Org1's User1 (no
// longer allowed) and one by Org2's User1 (still allowed). Every orderer drops the first and
// orders the second exactly once, also an orderer that was down while the records arrived
// and re-validates them after its restart.
func TestRevalidationAfterConfigUpdate(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.startAll()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ch = "chan-r"
	nw.createChannel(ch)
	before, _ := nw.configOf(ctx, nw.orderers[0], ch)

	resp := nw.update(ctx, nw.orderers[0], ch, func(tx *fconfigtx.ConfigTx) error {
		return tx.Application().Organization("Org1").SetPolicy("Writers", fconfigtx.Policy{Type: fconfigtx.SignaturePolicyType, Rule: "OR('Org1MSP.admin')"})
	}, nw.admin(0))
	if resp.Status != cb.Status_SUCCESS {
		t.Fatalf("revoking Org1 users' write permission: %s: %s", resp.Status, resp.Info)
	}
	nw.waitHeight(ctx, ch, 2)

	org2 := nw.spec.PeerOrgs[1]
	org2User, err := msp.LoadSigner(mspgen.UserMSPDir(mspgen.PeerOrgDir(nw.cryptoDir, org2.Domain), org2.Domain, "User1"), org2.MSPID)
	if err != nil {
		t.Fatal(err)
	}
	revoked := endorserTx(t, nw.user, ch, []byte("revoked"))
	allowed := endorserTx(t, org2User, ch, []byte("still allowed"))
	revokedID, _ := client.TxID(revoked)
	allowedID, _ := client.TxID(allowed)

	// Directly through Broadcast now, Org1's user is refused.
	conn := nw.orderers[0].dial()
	defer conn.Close()
	if r, err := client.Broadcast(ctx, conn, revoked); err != nil || r.Status != cb.Status_FORBIDDEN {
		t.Fatalf("Org1 user after the revocation: %v %v, want FORBIDDEN", r, err)
	}

	// orderer2 is down while the stale records arrive.
	down := nw.orderers[2]
	down.stop()
	prod, err := kafka.NewProducer(ctx, kafka.Options{Brokers: nw.cluster.Addrs(), Version: "1.0.0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, env := range []*cb.Envelope{revoked, allowed} {
		raw, err := proto.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := prod.Produce(ctx, ch, kafka.MarshalRegular(raw, before.Sequence, ab.KafkaMessageRegular_NORMAL, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// A normal message behind them, so that the re-submission has been consumed once it is in.
	conn1 := nw.orderers[1].dial()
	defer conn1.Close()
	tail := broadcastStream(ctx, conn1, org2User, ch, 1, payloads(9, 0), nil)
	want := map[string]string{allowedID: "", tail.acked[0]: ""}
	live := &network{t: t, orderers: nw.orderers[:2], user: nw.user}
	live.collectChains(ch, want, time.Minute)

	down.start()
	down.waitReady()
	chains := nw.collectChains(ch, want, time.Minute)
	nw.verifyChains(ch, chains)
	for i, chain := range chains {
		seen := map[string]int{}
		for _, b := range chain {
			for _, tx := range blockTxs(b) {
				seen[tx.id]++
			}
		}
		if seen[revokedID] != 0 || seen[allowedID] != 1 {
			t.Errorf("%s: the revoked creator's envelope appears %d times (want 0), the allowed one %d times (want 1)", nw.orderers[i].name, seen[revokedID], seen[allowedID])
		}
	}
}

func endorserTx(t *testing.T, s client.Signer, channelID string, data []byte) *cb.Envelope {
	t.Helper()
	env, err := client.Envelope(s, cb.HeaderType_ENDORSER_TRANSACTION, channelID, data)
	if err != nil {
		t.Fatal(err)
	}
	return env
}
