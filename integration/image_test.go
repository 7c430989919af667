package integration

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dockerfileImage reads from ../Dockerfile the final stage's ENV and the source of the
// orderer.yaml it copies to /etc/hyperledger/fabric.
func dockerfileImage(t *testing.T) (env []string, yamlSrc string) {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "FROM":
			env, yamlSrc = nil, ""
		case "ENV":
			env = append(env, f[1:]...)
		case "COPY":
			if len(f) == 3 && f[2] == "/etc/hyperledger/fabric/orderer.yaml" {
				yamlSrc = f[1]
			}
		}
	}
	if yamlSrc == "" {
		t.Fatal("the Dockerfile copies no orderer.yaml to /etc/hyperledger/fabric")
	}
	return env, yamlSrc
}

// TestImageDefaultConfigStarts runs the orderer binary as the image does: the orderer.yaml the
// Dockerfile copies, the Dockerfile's ENV, and only what a compose file must add (genesis
// block, MSP, listen ports on 127.0.0.1 instead of 0.0.0.0, a writable ledger directory
// instead of the image's volume). Everything else — Kafka version, retries, timeouts, metrics
// provider — is the image's default, and the orderer must come up healthy on kfake.
func TestImageDefaultConfigStarts(t *testing.T) {
	nw := newNetwork(t, 1)
	o := nw.orderers[0]
	imageEnv, src := dockerfileImage(t)
	cfgDir := t.TempDir()
	yamlRaw, err := os.ReadFile(filepath.Join("..", src))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "orderer.yaml"), yamlRaw, 0o644); err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{
		"FABRIC_CFG_PATH":                  cfgDir,
		"ORDERER_GENERAL_LISTENADDRESS":    "127.0.0.1",
		"ORDERER_GENERAL_LISTENPORT":       strconv.Itoa(o.port),
		"ORDERER_OPERATIONS_LISTENADDRESS": o.opsAddr(),
		"ORDERER_FILELEDGER_LOCATION":      filepath.Join(o.dir, "ledger"),
		"ORDERER_GENERAL_BOOTSTRAPFILE":    filepath.Join(nw.dir, "genesis.block"),
		"ORDERER_GENERAL_LOCALMSPDIR":      o.mspDir,
		"ORDERER_GENERAL_LOCALMSPID":       nw.spec.OrdererOrgs[0].MSPID,
	}
	env := cleanEnviron()
	for _, kv := range imageEnv {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := overrides[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range overrides {
		env = append(env, k+"="+v)
	}
	o.env = env
	o.start()
	o.waitReady()

	resp, err := http.Get("http://" + o.opsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "fabric_version{") {
		t.Errorf("/metrics with the image's defaults: %d", resp.StatusCode)
	}
	log := o.logSinceStart()
	if strings.Contains(log, "unknown variable") || strings.Contains(log, "level=ERROR") || strings.Contains(log, " ERRO ") {
		t.Errorf("start-up with the image's defaults logged problems:\n%s", log)
	}
	if testing.Verbose() {
		t.Logf("orderer log:\n%s", log)
	}
	o.stop()
}
