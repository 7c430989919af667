package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	"gopkg.in/yaml.v3"

	"github.com/kordhq/kord/orderer/chainverify"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

func runKordctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kordctlBin, args...)
	cmd.Env = cleanEnviron()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func readBlockFile(t *testing.T, path string) *cb.Block {
	t.Helper()
	b, err := chainverify.ReadBlockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKordctlChannelFlow runs the operator tool the way the README shows: a genesis block and
// a channel-creation tx from a network spec, then channel create, update (anchor peers as
// Org1's admin, batch size as the orderer admin, a refused one) and fetch.
func TestKordctlChannelFlow(t *testing.T) {
	nw := newNetwork(t, 1)
	nw.startAll()
	o := nw.orderers[0]
	dir := t.TempDir()
	spec, err := yaml.Marshal(genesis.SpecOf(nw.profile))
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(dir, "network.yaml")
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := runKordctl(t, args...)
		if err != nil {
			t.Fatalf("kordctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	must("genesis", "--spec", specFile, "--out", filepath.Join(dir, "g.block"))
	if v, err := channelconfig.FromBlock(readBlockFile(t, filepath.Join(dir, "g.block"))); err != nil || !v.System || v.Consensus != "kafka" {
		t.Fatalf("genesis block: %+v, %v", v, err)
	}

	const ch = "chan-k"
	tx := filepath.Join(dir, ch+".tx")
	must("genesis", "channel-tx", "--spec", specFile, "--channel", ch, "--out", tx)

	org1, ord := nw.spec.PeerOrgs[0], nw.spec.OrdererOrgs[0]
	org1Admin := []string{"--msp-dir", mspgen.UserMSPDir(mspgen.PeerOrgDir(nw.cryptoDir, org1.Domain), org1.Domain, mspgen.AdminUser), "--msp-id", org1.MSPID}
	ordAdmin := []string{"--msp-dir", mspgen.UserMSPDir(mspgen.OrdererOrgDir(nw.cryptoDir, ord.Domain), ord.Domain, mspgen.AdminUser), "--msp-id", ord.MSPID}
	conn := []string{"-o", o.addr(), "-c", ch}
	with := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	b0 := filepath.Join(dir, ch+".block")
	must(with([]string{"channel", "create", "-f", tx, "--out", b0}, conn, org1Admin)...)
	if v, err := channelconfig.FromBlock(readBlockFile(t, b0)); err != nil || v.ChannelID != ch {
		t.Fatalf("block 0 from channel create: %+v, %v", v, err)
	}

	must(with([]string{"channel", "update", "--anchor-peer", "Org1=peer0.org1.example.com:7051"}, conn, org1Admin)...)
	// Each update is computed from the current config: wait for the previous one to land.
	waitSeq := func(seq uint64) *channelconfig.Values {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out := filepath.Join(dir, "config.block")
			must(with([]string{"channel", "fetch", "config", "--out", out}, conn, org1Admin)...)
			v, err := channelconfig.FromBlock(readBlockFile(t, out))
			if err != nil {
				t.Fatal(err)
			}
			if v.Sequence >= seq {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("config of %s still at sequence %d, want %d", ch, v.Sequence, seq)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitSeq(2)
	must(with([]string{"channel", "update", "--batch-size", "5", "--batch-timeout", "1s"}, conn, ordAdmin)...)
	if v := waitSeq(3); v.BatchSize.MaxMessageCount != 5 || v.BatchTimeout != time.Second {
		t.Fatalf("after the batch update: MaxMessageCount %d, BatchTimeout %v", v.BatchSize.MaxMessageCount, v.BatchTimeout)
	}

	out, err := runKordctl(t, with([]string{"channel", "update", "--batch-size", "7"}, conn, org1Admin)...)
	if err == nil || !strings.Contains(out, "BAD_REQUEST") || !strings.Contains(out, "/Channel/Orderer/Admins") {
		t.Fatalf("batch-size update by an application admin: err %v, output %s", err, out)
	}

	newest := filepath.Join(dir, "newest.block")
	must(with([]string{"channel", "fetch", "newest", "--out", newest}, conn, org1Admin)...)
	if b := readBlockFile(t, newest); b.Header.Number != 2 {
		t.Fatalf("newest block of %s is %d, want 2", ch, b.Header.Number)
	}
}
