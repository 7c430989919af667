package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kordhq/kord/orderer/chainverify"
)

// kordctl runs the kordctl binary and returns its combined output and exit error.
func (nw *network) kordctl(ctx context.Context, stdin []byte, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, kordctlBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// mspArgs are the kordctl flags that sign Deliver requests as the network's user.
func (nw *network) mspArgs() []string {
	return []string{"--msp-dir", nw.userMSPDir, "--msp-id", nw.userMSPID}
}

// kordctlVerify runs `kordctl verify --orderer ...` on every orderer for channelID, requiring
// identical chains of the same height, and returns its report.
func (nw *network) kordctlVerify(ctx context.Context, channelID string) string {
	nw.t.Helper()
	addrs := make([]string, len(nw.orderers))
	for i, o := range nw.orderers {
		addrs[i] = o.addr()
	}
	args := append([]string{"verify", "--orderer", strings.Join(addrs, ","), "--channel", channelID, "--same-height", "--timeout", "2m"}, nw.mspArgs()...)
	out, errOut, err := nw.kordctl(ctx, nil, args...)
	if err != nil {
		nw.t.Fatalf("kordctl verify %s: %v\n%s%s", channelID, err, out, errOut)
	}
	return out
}

// TestKordctlFetchAndVerify fetches a channel from three orderers with kordctl into block
// files and as a stream, verifies each copy and compares them, from files and straight from
// the orderers, and finds a tampered block.
func TestKordctlFetchAndVerify(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.startAll()
	nw.createChannel(appChannel)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	results := runLoad(ctx, t, nw.user, loadSpec{targets: nw.orderers, streams: 1, perStream: 40, bigEvery: 20, seed: 3})
	requireAllAcked(t, results, 40)
	acked := map[string]string{}
	ackedSet(t, acked, results)
	chains := nw.collectChains(appChannel, acked, 60*time.Second)
	want := len(chains[0])

	dirs := make([]string, len(nw.orderers))
	for i, o := range nw.orderers {
		dirs[i] = filepath.Join(t.TempDir(), o.name)
		args := append([]string{"fetch", "--orderer", o.addr(), "--channel", appChannel, "--out", dirs[i], "--stop", "newest"}, nw.mspArgs()...)
		out, errOut, err := nw.kordctl(ctx, nil, args...)
		if err != nil {
			t.Fatalf("kordctl fetch from %s: %v\n%s%s", o.name, err, out, errOut)
		}
		if _, blks, err := chainverify.ReadBlockDir(dirs[i], appChannel); err != nil || len(blks) != want {
			t.Fatalf("%s: %d block files, want %d (%v); kordctl said %s", o.name, len(blks), want, err, errOut)
		}
		if _, err := os.Stat(filepath.Join(dirs[i], appChannel+"_0.block")); err != nil {
			t.Fatal(err)
		}
	}

	out, errOut, err := nw.kordctl(ctx, nil, "verify", "--dir", dirs[0], "--dir", dirs[1], "--dir", dirs[2], "--same-height")
	if err != nil || !strings.Contains(out, "chains identical: 3 copies") {
		t.Fatalf("kordctl verify --dir: %v\n%s%s", err, out, errOut)
	}
	t.Logf("kordctl verify --dir:\n%s", out)

	out = nw.kordctlVerify(ctx, appChannel)
	if !strings.Contains(out, "chains identical: 3 copies") {
		t.Fatalf("kordctl verify --orderer:\n%s", out)
	}

	// A stream on stdout, verified from stdin; a range that starts at block 2.
	stream, errOut, err := nw.kordctl(ctx, nil, append([]string{"fetch", "--orderer", nw.orderers[1].addr(), "--channel", appChannel, "--out", "-"}, nw.mspArgs()...)...)
	if err != nil {
		t.Fatalf("kordctl fetch --out -: %v\n%s", err, errOut)
	}
	out, errOut, err = nw.kordctl(ctx, []byte(stream), "verify", "--in", "-")
	if err != nil || !strings.Contains(out, "blocks (0..") {
		t.Fatalf("kordctl verify --in -: %v\n%s%s", err, out, errOut)
	}
	partial := filepath.Join(t.TempDir(), "partial")
	if out, errOut, err := nw.kordctl(ctx, nil, append([]string{"fetch", "--orderer", nw.orderers[2].addr(), "--channel", appChannel, "--out", partial, "--start", "2", "--stop", "4"}, nw.mspArgs()...)...); err != nil {
		t.Fatalf("kordctl fetch --start 2 --stop 4: %v\n%s%s", err, out, errOut)
	}
	if _, blks, err := chainverify.ReadBlockDir(partial, appChannel); err != nil || len(blks) != 3 || blks[0].Header.Number != 2 {
		t.Fatalf("partial fetch: %d blocks, %v", len(blks), err)
	}

	// Tampering is found and named.
	bad := filepath.Join(dirs[2], appChannel+"_3.block")
	blk, err := chainverify.ReadBlockFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	blk.Data.Data[0][len(blk.Data.Data[0])-1] ^= 0xff
	if _, err := chainverify.WriteBlockFile(dirs[2], appChannel, blk); err != nil {
		t.Fatal(err)
	}
	out, _, err = nw.kordctl(ctx, nil, "verify", "--dir", dirs[0], "--dir", dirs[2])
	if err == nil || !strings.Contains(out, "block 3") {
		t.Fatalf("tampered copy not found: err %v\n%s", err, out)
	}
	t.Logf("kordctl verify on a tampered copy:\n%s", out)

	// Bad usage exits 2.
	_, _, err = nw.kordctl(ctx, nil, "fetch", "--channel", appChannel)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("fetch without --orderer: %v, want exit status 2", err)
	}
	// An unknown channel is a clear error.
	_, errOut, err = nw.kordctl(ctx, nil, append([]string{"fetch", "--orderer", nw.orderers[0].addr(), "--channel", "nosuchchannel", "--out", t.TempDir()}, nw.mspArgs()...)...)
	if err == nil || !strings.Contains(errOut, "NOT_FOUND") {
		t.Fatalf("unknown channel: %v %s", err, errOut)
	}
}
