package fabricsdk

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kord is one `orderer dev` process: a whole ordering service (in-process Kafka, crypto
// tree, system channel) under dir, listening on 127.0.0.1 only.
type kord struct {
	dir     string // orderer dev --dir: crypto/, network.yaml, ledger
	addr    string // gRPC
	ops     string // /healthz
	kordctl string // path of the kordctl binary
	log     *bytes.Buffer
	exited  chan struct{}
	exitErr error
	cmd     *exec.Cmd
	stopped bool
}

// buildKord compiles orderer and kordctl from the repository root, as a user would, into
// binDir. The root module is built with its own go.mod: nothing of it is imported here.
func buildKord(t *testing.T, binDir string) (orderer, kordctl string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "orderer")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	for _, name := range []string{"orderer", "kordctl"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, name), "./cmd/"+name)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
		}
	}
	return filepath.Join(binDir, "orderer"), filepath.Join(binDir, "kordctl")
}

// freeAddr returns a 127.0.0.1 address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startKord runs `orderer dev` and waits until /healthz says every channel consumes Kafka.
// The process is stopped when the test ends, whatever the outcome; its output is shown
// when the test failed.
func startKord(t *testing.T) *kord {
	t.Helper()
	tmp := t.TempDir()
	orderer, kordctl := buildKord(t, filepath.Join(tmp, "bin"))
	k := &kord{
		dir:     filepath.Join(tmp, "dev"),
		addr:    freeAddr(t),
		ops:     freeAddr(t),
		kordctl: kordctl,
		log:     &bytes.Buffer{},
		exited:  make(chan struct{}),
	}
	k.cmd = exec.Command(orderer, "dev", "--dir", k.dir, "--listen", k.addr, "--ops", k.ops)
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	// Own process group, so that the whole tree goes at clean-up.
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { k.exitErr = k.cmd.Wait(); close(k.exited) }()
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("orderer dev output:\n%s", k.log.String())
		}
	})

	deadline := time.Now().Add(2 * time.Minute)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-k.exited:
			t.Fatalf("orderer dev exited before it was healthy: %v", k.exitErr)
		default:
		}
		if resp, err := hc.Get("http://" + k.ops + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("orderer dev not healthy after 2 minutes")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stop sends SIGTERM to the process group (orderer dev stops gracefully), then SIGKILL if it
// is still there after 15s.
func (k *kord) stop() {
	if k.stopped {
		return
	}
	k.stopped = true
	pgid := k.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-k.exited
	}
}

// ctl runs kordctl with a bounded time and fails the test on a non-zero exit.
func (k *kord) ctl(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, k.kordctl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kordctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// org1AdminMSP is the MSP directory cryptogen (and orderer dev) gives Org1's admin.
func (k *kord) org1AdminMSP() string {
	return filepath.Join(k.dir, "crypto", "peerOrganizations", "org1.example.com", "users", "Admin@org1.example.com", "msp")
}

// connectionProfile is the SDK's view of the network: one plaintext orderer, Org1 with the
// cryptogen layout. Written as YAML, as an application would ship it.
func (k *kord) connectionProfile(stateDir string) []byte {
	return []byte(fmt.Sprintf(`
version: 1.0.0
client:
  organization: org1
  logging:
    level: warning
  cryptoconfig:
    path: %[1]s
  credentialStore:
    path: %[2]s/state
    cryptoStore:
      path: %[2]s/msp
  BCCSP:
    security:
      enabled: true
      default:
        provider: SW
      hashAlgorithm: SHA2
      softVerify: true
      level: 256
  tlsCerts:
    systemCertPool: false
organizations:
  org1:
    mspid: Org1MSP
    cryptoPath: peerOrganizations/org1.example.com/users/{username}@org1.example.com/msp
orderers:
  orderer.example.com:
    url: grpc://%[3]s
    grpcOptions:
      allow-insecure: true
      fail-fast: false
      keep-alive-time: 0s
      keep-alive-timeout: 20s
`, filepath.Join(k.dir, "crypto"), stateDir, k.addr))
}
