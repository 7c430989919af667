// Package examples holds docker-compose files for kord and their tests. No Docker engine runs
// the tests: they check what can be checked without one — every file parses, every orderer's
// environment is accepted by kord's configuration loader on top of the image's defaults, the
// topologies are the tutorials', and the Dockerfile, compose files and Prometheus
// configuration agree on names and ports.
package examples

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kordhq/kord/config"
)

const image = "kordhq/orderer:latest"

// dockerfile is what the tests need of ../Dockerfile.
type dockerfile struct {
	stages  int
	env     []string // ENV of the final stage, KEY=VALUE
	copies  map[string]string
	expose  []string
	user    string
	cmd     string
	content string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{copies: map[string]string{}, content: string(raw)}
	var logical []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			d.stages++
			d.env, d.expose, d.user, d.cmd = nil, nil, "", ""
			d.copies = map[string]string{}
		case "ENV":
			d.env = append(d.env, f[1:]...)
		case "COPY":
			if len(f) == 3 {
				d.copies[f[1]] = f[2]
			}
		case "EXPOSE":
			d.expose = append(d.expose, f[1:]...)
		case "USER":
			d.user = f[1]
		case "CMD":
			d.cmd = strings.Join(f[1:], " ")
		}
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if d.stages < 2 {
		t.Errorf("want a multi-stage build, have %d stage(s)", d.stages)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/orderer", "./cmd/kordctl", "/var/hyperledger/production/orderer"} {
		if !strings.Contains(d.content, want) {
			t.Errorf("Dockerfile does not mention %s", want)
		}
	}
	if d.copies["config/orderer.yaml"] != "/etc/hyperledger/fabric/orderer.yaml" {
		t.Errorf("default orderer.yaml not copied to /etc/hyperledger/fabric: %v", d.copies)
	}
	if !slices.Contains(d.env, "FABRIC_CFG_PATH=/etc/hyperledger/fabric") {
		t.Errorf("FABRIC_CFG_PATH not set: %v", d.env)
	}
	if !slices.Contains(d.expose, "7050") || !slices.Contains(d.expose, "8443") {
		t.Errorf("EXPOSE %v, want 7050 and 8443", d.expose)
	}
	if d.user == "" || d.user == "root" || d.user == "0" {
		t.Errorf("USER %q: the image must run as an unprivileged user", d.user)
	}
	if d.cmd != `["orderer"]` {
		t.Errorf("CMD %s", d.cmd)
	}
	// The image's defaults alone are a valid configuration.
	if _, warnings, err := imageConfig(t, d, nil); err != nil || len(warnings) > 0 {
		t.Errorf("image defaults: %v, warnings %q", err, warnings)
	}
}

// imageConfig loads what an orderer in kord's image sees: the orderer.yaml the Dockerfile
// copies, its ENV, then env (the compose file's list).
func imageConfig(t *testing.T, d dockerfile, env []string) (*config.TopLevel, []string, error) {
	t.Helper()
	var src string
	for from, to := range d.copies {
		if to == "/etc/hyperledger/fabric/orderer.yaml" {
			src = from
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", src))
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]string(nil), d.env...), env...)
	return config.LoadYAML(raw, "/etc/hyperledger/fabric", all)
}

type compose struct {
	Name     string             `yaml:"name"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
	Networks map[string]any     `yaml:"networks"`
}

type service struct {
	Image       string    `yaml:"image"`
	Environment yaml.Node `yaml:"environment"`
	Volumes     []string  `yaml:"volumes"`
	Ports       []string  `yaml:"ports"`
	Command     yaml.Node `yaml:"command"`
	DependsOn   []string  `yaml:"depends_on"`
}

// env returns a service's environment as KEY=VALUE, from the list or the mapping form.
func (s service) env(t *testing.T) []string {
	t.Helper()
	var out []string
	switch s.Environment.Kind {
	case 0:
	case yaml.SequenceNode:
		if err := s.Environment.Decode(&out); err != nil {
			t.Fatal(err)
		}
	case yaml.MappingNode:
		var m map[string]string
		if err := s.Environment.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		sort.Strings(out)
	default:
		t.Fatalf("environment is neither a list nor a mapping")
	}
	return out
}

func composeFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && strings.HasPrefix(name, "docker-compose") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no compose files: %v", err)
	}
	return files
}

// TestEveryYAMLParses: compose files, configtx.yaml, crypto-config.yaml, Prometheus files.
func TestEveryYAMLParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var doc any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		n++
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("walked %d YAML files: %v", n, err)
	}
}

// TestComposeOrdererEnvironmentsLoad: the environment list of every orderer in every example
// compose file loads through kord's configuration loader, with no unknown variable.
func TestComposeOrdererEnvironmentsLoad(t *testing.T) {
	d := readDockerfile(t)
	for _, file := range composeFiles(t) {
		c := readCompose(t, file)
		orderers := 0
		for name, s := range c.Services {
			env := s.env(t)
			// ORDERER_CA and the like are shell variables of CLI containers.
			hasOrdererEnv := slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "ORDERER_GENERAL_") })
			if s.Image != image && !hasOrdererEnv {
				continue
			}
			orderers++
			t.Run(file+"/"+name, func(t *testing.T) {
				if s.Image != image {
					t.Errorf("image %q, want %s", s.Image, image)
				}
				cfg, warnings, err := imageConfig(t, d, env)
				if err != nil {
					t.Fatalf("environment does not load: %v", err)
				}
				for _, w := range warnings {
					t.Errorf("warning: %s", w)
				}
				if !cfg.General.TLS.Enabled || cfg.General.ListenAddress != "0.0.0.0" || cfg.General.ListenPort != 7050 {
					t.Errorf("General: TLS %v, listen %s:%d", cfg.General.TLS.Enabled, cfg.General.ListenAddress, cfg.General.ListenPort)
				}
				if cfg.Operations.ListenAddress != "0.0.0.0:8443" || cfg.Metrics.Provider != "prometheus" {
					t.Errorf("operations %q, metrics %q", cfg.Operations.ListenAddress, cfg.Metrics.Provider)
				}
				if cfg.FileLedger.Location != "/var/hyperledger/production/orderer" {
					t.Errorf("ledger at %q", cfg.FileLedger.Location)
				}
				mounted := func(target string) bool {
					for _, v := range s.Volumes {
						if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == target {
							return true
						}
					}
					return false
				}
				for _, path := range []string{cfg.General.BootstrapFile, cfg.General.LocalMSPDir, filepath.Dir(cfg.General.TLS.Certificate), cfg.FileLedger.Location} {
					if !mounted(path) {
						t.Errorf("%s is not mounted (volumes %q)", path, s.Volumes)
					}
				}
				if !slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":7050") }) ||
					!slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":8443") }) {
					t.Errorf("ports %q do not publish 7050 and 8443", s.Ports)
				}
			})
		}
		if orderers != 3 {
			t.Errorf("%s: %d orderers, want 3", file, orderers)
		}
	}
}

func readCompose(t *testing.T, file string) compose {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c
}

// TestTopologies: the tutorials' shape (3 ZooKeeper + 4 Kafka + 3 orderers + a peer of each of
// two organisations), its KRaft variant, broker names matching configtx.yaml, and Prometheus
// scraping every orderer on the port it listens on.
func TestTopologies(t *testing.T) {
	want := map[string][4]int{ // zookeeper, kafka, orderers, peers
		filepath.Join("kafka-zookeeper", "docker-compose.yaml"): {3, 4, 3, 2},
		filepath.Join("kafka-kraft", "docker-compose.yaml"):     {0, 4, 3, 2},
	}
	brokers := configtxBrokers(t)
	targets := prometheusTargets(t)
	for file, w := range want {
		c := readCompose(t, file)
		var got [4]int
		var kafkas, orderers []string
		for name, s := range c.Services {
			switch {
			case strings.HasPrefix(name, "zookeeper"):
				got[0]++
			case strings.HasPrefix(name, "kafka"):
				got[1]++
				kafkas = append(kafkas, name+":9092")
			case s.Image == image:
				got[2]++
				orderers = append(orderers, name+":8443")
			case strings.HasPrefix(name, "peer"):
				got[3]++
			}
		}
		if got != w {
			t.Errorf("%s: zookeeper/kafka/orderers/peers = %v, want %v", file, got, w)
		}
		sort.Strings(kafkas)
		if !slices.Equal(kafkas, brokers) {
			t.Errorf("%s: Kafka services %v, configtx.yaml brokers %v", file, kafkas, brokers)
		}
		for _, o := range orderers {
			if !slices.Contains(targets, o) {
				t.Errorf("%s: Prometheus does not scrape %s (targets %v)", file, o, targets)
			}
		}
		if _, ok := c.Services["prometheus"]; !ok {
			t.Errorf("%s: no prometheus service", file)
		}
	}
}

func configtxBrokers(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("configtx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Orderer struct {
			OrdererType string `yaml:"OrdererType"`
			Kafka       struct {
				Brokers []string `yaml:"Brokers"`
			} `yaml:"Kafka"`
		} `yaml:"Orderer"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Orderer.OrdererType != "kafka" {
		t.Errorf("configtx.yaml OrdererType %q", doc.Orderer.OrdererType)
	}
	out := append([]string(nil), doc.Orderer.Kafka.Brokers...)
	sort.Strings(out)
	return out
}

func prometheusTargets(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sc := range doc.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s", sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			out = append(out, st.Targets...)
		}
	}
	return out
}
