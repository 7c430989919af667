package config

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCert is a syntactically valid PEM certificate block; its content is
// never parsed as X.509 here.
const testCert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0k=\n-----END CERTIFICATE-----\n"
const testKey = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgE=\n-----END PRIVATE KEY-----\n"

func loadDefault(t *testing.T, env ...string) (*TopLevel, []string, error) {
	t.Helper()
	return LoadYAML(DefaultYAML, "", env)
}

func mustLoad(t *testing.T, env ...string) *TopLevel {
	t.Helper()
	c, warnings, err := loadDefault(t, env...)
	if err != nil {
		t.Fatalf("load with %q: %v", env, err)
	}
	if len(warnings) > 0 {
		t.Fatalf("load with %q: unexpected warnings %q", env, warnings)
	}
	return c
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// withoutSections clears the parts that are kept raw, so that typed values
// can be compared with reflect.DeepEqual.
func withoutSections(c *TopLevel) *TopLevel {
	cp := *c
	cp.General.BCCSP = Section{}
	cp.Consensus = Section{}
	cp.SourceFile = ""
	return &cp
}

func TestSchemaBuilds(t *testing.T) {
	s, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"GENERAL_LISTENPORT", "KAFKA_RETRY_SHORTINTERVAL", "GENERAL_TLS_ROOTCAS",
		"KAFKA_TOPIC_REPLICATIONFACTOR", "OPERATIONS_LISTENADDRESS", "METRICS_PROVIDER",
		"KAFKA_TLS_PRIVATEKEY_FILE", "KAFKA_BROKERS", "GENERAL_CLUSTER_CLIENTCERTIFICATE",
		"CHANNELPARTICIPATION_MAXREQUESTBODYSIZE", "ADMIN_TLS_CLIENTAUTHREQUIRED",
	} {
		if _, ok := s.env[name]; !ok {
			t.Errorf("ORDERER_%s is not a known variable", name)
		}
	}
	if EnvName("Kafka.Retry.ShortInterval") != "ORDERER_KAFKA_RETRY_SHORTINTERVAL" {
		t.Errorf("EnvName = %q", EnvName("Kafka.Retry.ShortInterval"))
	}
}

func TestDefaultYAMLIsDefaults(t *testing.T) {
	c := mustLoad(t)
	if got, want := withoutSections(c), withoutSections(Defaults()); !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultYAML differs from Defaults():\n got %+v\nwant %+v", got, want)
	}
	if err := Defaults().Validate(); err != nil {
		t.Errorf("Defaults() does not validate: %v", err)
	}
	if c.General.BCCSP.Tree == nil {
		t.Error("BCCSP section was not kept")
	}
}

func TestStockFabricSampleConfigLoads(t *testing.T) {
	path := filepath.Join("testdata", "fabric-sample-orderer.yaml")
	c, warnings, err := LoadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"SourceFile", c.SourceFile, path},
		{"BootstrapMethod", c.General.BootstrapMethod, "file"},
		{"BootstrapFile", c.General.BootstrapFile, filepath.Join(dir, "genesisblock")},
		{"LocalMSPDir", c.General.LocalMSPDir, filepath.Join(dir, "msp")},
		{"TLS.RootCAs", c.General.TLS.RootCAs, []string{filepath.Join(dir, "tls/ca.crt")}},
		{"TLS.PrivateKey", c.General.TLS.PrivateKey, filepath.Join(dir, "tls/server.key")},
		{"FileLedger.Location", c.FileLedger.Location, "/var/hyperledger/production/orderer"},
		{"Keepalive.ServerInterval", c.General.Keepalive.ServerInterval, 7200 * time.Second},
		{"Kafka.Version", c.Kafka.Version, "0.10.2.0"},
		{"Kafka.Retry.LongTotal", c.Kafka.Retry.LongTotal, 12 * time.Hour},
		{"Kafka.Topic.ReplicationFactor", c.Kafka.Topic.ReplicationFactor, int16(3)},
		{"Cluster.SendBufferSize", c.General.Cluster.SendBufferSize, 100},
		{"ChannelParticipation.MaxRequestBodySize", c.ChannelParticipation.MaxRequestBodySize, uint32(1 << 20)},
		{"Admin.TLS.ClientAuthRequired", c.Admin.TLS.ClientAuthRequired, true},
		{"Operations.ListenAddress", c.Operations.ListenAddress, "127.0.0.1:8443"},
		{"Metrics.Statsd.WriteInterval", c.Metrics.Statsd.WriteInterval, 30 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if c.Consensus.Tree == nil {
		t.Error("Consensus section was not kept")
	}
}

// readEnvFile reads KEY=VALUE lines; blank lines and # comments are skipped.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			t.Fatalf("%s: not a KEY=VALUE line: %q", path, line)
		}
		env = append(env, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

func TestSeedEnvironmentsLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "seed-env", "*.env"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed environments: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			env := readEnvFile(t, file)
			c, warnings, err := loadDefault(t, env...)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				if strings.Contains(w, "unknown") {
					t.Errorf("unexpected warning: %s", w)
				}
			}
			if c.General.BootstrapMethod != "file" ||
				c.General.BootstrapFile != "/var/hyperledger/orderer/orderer.genesis.block" {
				t.Errorf("bootstrap = %q %q", c.General.BootstrapMethod, c.General.BootstrapFile)
			}
			if c.General.LocalMSPID != "OrdererMSP" || c.General.ListenAddress != "0.0.0.0" {
				t.Errorf("LocalMSPID %q, ListenAddress %q", c.General.LocalMSPID, c.General.ListenAddress)
			}
			if !slices.Equal(c.General.TLS.RootCAs, []string{"/var/hyperledger/orderer/tls/ca.crt"}) {
				t.Errorf("RootCAs = %q", c.General.TLS.RootCAs)
			}
			r := c.Kafka.Retry
			if r.ShortInterval != time.Second || r.ShortTotal != 30*time.Second ||
				r.LongInterval != 10*time.Second || r.LongTotal != 100*time.Second {
				t.Errorf("retry = %+v", r)
			}
			if !c.Kafka.Verbose || c.General.LogLevel != "debug" {
				t.Errorf("Verbose %v, LogLevel %q", c.Kafka.Verbose, c.General.LogLevel)
			}
			if lookupEnv(env, "ORDERER_KAFKA_BROKERS") != "" && len(c.Kafka.Brokers) != 4 {
				t.Errorf("Brokers = %q", c.Kafka.Brokers)
			}
			// GenesisMethod/GenesisFile are the 1.x names: a deprecation
			// warning each, nothing else.
			if len(warnings) != 2 {
				t.Errorf("warnings = %q", warnings)
			}
		})
	}
}

// TestSeedEnvironmentsComplete checks, when the tutorial seeds are around,
// that every compose ORDERER_ assignment in them is in a seed-env file.
func TestSeedEnvironmentsComplete(t *testing.T) {
	seeds, _ := filepath.Glob("/work/shared/seeds/*.txt")
	if len(seeds) == 0 {
		t.Skip("tutorial seeds not available")
	}
	have := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join("testdata", "seed-env", "*.env"))
	for _, f := range files {
		for _, kv := range readEnvFile(t, f) {
			have[kv] = true
		}
	}
	re := regexp.MustCompile(`^\s*-\s*(ORDERER_[A-Z0-9_]+=.*)$`)
	for _, seed := range seeds {
		data, err := os.ReadFile(seed)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if m := re.FindStringSubmatch(strings.TrimRight(line, "\r\n")); m != nil && !have[m[1]] {
				t.Errorf("%s: %q is missing from testdata/seed-env", filepath.Base(seed), m[1])
			}
		}
	}
}

// TestEnvValues covers each kind of value through the environment, good and
// bad; a bad value's error must name the variable and the value.
func TestEnvValues(t *testing.T) {
	type check func(c *TopLevel) any
	cases := []struct {
		name  string
		env   string
		get   check
		want  any
		isErr string // when set, loading fails with this text
	}{
		// integers
		{"int", "ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=2", func(c *TopLevel) any { return c.Kafka.Topic.ReplicationFactor }, int16(2), ""},
		{"int quoted", `ORDERER_GENERAL_LISTENPORT="7051"`, func(c *TopLevel) any { return c.General.ListenPort }, uint16(7051), ""},
		{"int spaces", "ORDERER_KAFKA_RETRY_PRODUCER_RETRYMAX= 5 ", func(c *TopLevel) any { return c.Kafka.Retry.Producer.RetryMax }, 5, ""},
		{"int bad", "ORDERER_GENERAL_LISTENPORT=abc", nil, nil, "not an integer"},
		{"int range", "ORDERER_GENERAL_LISTENPORT=65536", nil, nil, "out of range [0, 65535]"},
		{"int negative", "ORDERER_GENERAL_LISTENPORT=-1", nil, nil, "must not be negative"},
		{"port zero", "ORDERER_GENERAL_LISTENPORT=0", nil, nil, "between 1 and 65535"},
		{"int16 range", "ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=40000", nil, nil, "out of range"},
		{"replication zero", "ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR=0", nil, nil, "at least 1"},
		{"retrymax negative", "ORDERER_KAFKA_RETRY_METADATA_RETRYMAX=-1", nil, nil, "must not be negative"},
		{"int float", "ORDERER_KAFKA_RETRY_METADATA_RETRYMAX=1.5", nil, nil, "not an integer"},
		// booleans
		{"bool true", "ORDERER_KAFKA_VERBOSE=true", func(c *TopLevel) any { return c.Kafka.Verbose }, true, ""},
		{"bool TRUE", "ORDERER_KAFKA_VERBOSE=TRUE", func(c *TopLevel) any { return c.Kafka.Verbose }, true, ""},
		{"bool False", "ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED=False", func(c *TopLevel) any { return c.General.TLS.ClientAuthRequired }, false, ""},
		{"bool yes", "ORDERER_GENERAL_PROFILE_ENABLED=yes", func(c *TopLevel) any { return c.General.Profile.Enabled }, true, ""},
		{"bool bad", "ORDERER_KAFKA_VERBOSE=maybe", nil, nil, "not a boolean"},
		// durations
		{"duration s", "ORDERER_KAFKA_RETRY_SHORTINTERVAL=2s", func(c *TopLevel) any { return c.Kafka.Retry.ShortInterval }, 2 * time.Second, ""},
		{"duration ms", "ORDERER_KAFKA_RETRY_METADATA_RETRYBACKOFF=500ms", func(c *TopLevel) any { return c.Kafka.Retry.Metadata.RetryBackoff }, 500 * time.Millisecond, ""},
		{"duration m", "ORDERER_KAFKA_RETRY_LONGINTERVAL=5m", func(c *TopLevel) any { return c.Kafka.Retry.LongInterval }, 5 * time.Minute, ""},
		{"duration mixed", "ORDERER_GENERAL_AUTHENTICATION_TIMEWINDOW=1h30m", func(c *TopLevel) any { return c.General.Authentication.TimeWindow }, 90 * time.Minute, ""},
		{"duration no unit", "ORDERER_KAFKA_RETRY_SHORTINTERVAL=10", nil, nil, "not a duration"},
		{"duration negative", "ORDERER_KAFKA_RETRY_SHORTINTERVAL=-1s", nil, nil, "must not be negative"},
		{"duration zero", "ORDERER_KAFKA_RETRY_SHORTTOTAL=0s", nil, nil, "greater than zero"},
		{"duration bad", "ORDERER_KAFKA_RETRY_NETWORKTIMEOUTS_DIALTIMEOUT=soon", nil, nil, "not a duration"},
		// sizes
		{"size MB", "ORDERER_GENERAL_MAXRECVMSGSIZE=99 MB", func(c *TopLevel) any { return c.General.MaxRecvMsgSize }, uint32(99 << 20), ""},
		{"size MB 10", "ORDERER_GENERAL_MAXSENDMSGSIZE=10 MB", func(c *TopLevel) any { return c.General.MaxSendMsgSize }, uint32(10 << 20), ""},
		{"size KB", "ORDERER_CHANNELPARTICIPATION_MAXREQUESTBODYSIZE=512 KB", func(c *TopLevel) any { return c.ChannelParticipation.MaxRequestBodySize }, uint32(512 << 10), ""},
		{"size bytes", "ORDERER_GENERAL_MAXRECVMSGSIZE=104857600", func(c *TopLevel) any { return c.General.MaxRecvMsgSize }, uint32(104857600), ""},
		{"size unspaced", "ORDERER_GENERAL_MAXRECVMSGSIZE=2mb", func(c *TopLevel) any { return c.General.MaxRecvMsgSize }, uint32(2 << 20), ""},
		{"size bad unit", "ORDERER_GENERAL_MAXRECVMSGSIZE=5 TB", nil, nil, "not a size"},
		{"size bad", "ORDERER_GENERAL_MAXRECVMSGSIZE=ten MB", nil, nil, "not a size"},
		{"size overflow", "ORDERER_GENERAL_MAXRECVMSGSIZE=4 GB", nil, nil, "out of range"},
		{"size too big for gRPC", "ORDERER_GENERAL_MAXRECVMSGSIZE=3 GB", nil, nil, "must be between 1 and 2147483647"},
		// lists
		{"list", "ORDERER_KAFKA_BROKERS=[k0:9092,k1:9092]", func(c *TopLevel) any { return c.Kafka.Brokers }, []string{"k0:9092", "k1:9092"}, ""},
		{"list spaces", "ORDERER_KAFKA_BROKERS=[k0:9092, k1:9092]", func(c *TopLevel) any { return c.Kafka.Brokers }, []string{"k0:9092", "k1:9092"}, ""},
		{"list single", "ORDERER_KAFKA_BROKERS=k0:9092", func(c *TopLevel) any { return c.Kafka.Brokers }, []string{"k0:9092"}, ""},
		{"list quoted items", `ORDERER_GENERAL_TLS_ROOTCAS=["/a/ca.crt", '/b/ca.crt']`, func(c *TopLevel) any { return c.General.TLS.RootCAs }, []string{"/a/ca.crt", "/b/ca.crt"}, ""},
		{"list quoted whole", `ORDERER_KAFKA_BROKERS="[k0:9092,k1:9092]"`, func(c *TopLevel) any { return c.Kafka.Brokers }, []string{"k0:9092", "k1:9092"}, ""},
		{"list empty", "ORDERER_GENERAL_TLS_ROOTCAS=[]", func(c *TopLevel) any { return c.General.TLS.RootCAs }, []string(nil), ""},
		{"list bad broker", "ORDERER_KAFKA_BROKERS=k0:9092,k1:9092", nil, nil, "as a list"},
		{"list bad port", "ORDERER_KAFKA_BROKERS=[k0:90x2]", nil, nil, "port must be"},
		// strings
		{"string", "ORDERER_GENERAL_LOCALMSPID=OrdererMSP", func(c *TopLevel) any { return c.General.LocalMSPID }, "OrdererMSP", ""},
		{"string quoted", `ORDERER_GENERAL_LOCALMSPID="OrdererMSP"`, func(c *TopLevel) any { return c.General.LocalMSPID }, "OrdererMSP", ""},
		{"string empty is unset", "ORDERER_GENERAL_LOCALMSPID=", func(c *TopLevel) any { return c.General.LocalMSPID }, "SampleOrg", ""},
		{"case-insensitive name", "orderer_general_localmspid=Org1", func(c *TopLevel) any { return c.General.LocalMSPID }, "Org1", ""},
		// enumerations and versions
		{"bootstrap none", "ORDERER_GENERAL_BOOTSTRAPMETHOD=none", func(c *TopLevel) any { return c.General.BootstrapMethod }, "none", ""},
		{"bootstrap bad", "ORDERER_GENERAL_BOOTSTRAPMETHOD=magic", nil, nil, "must be file or none"},
		{"metrics prometheus", "ORDERER_METRICS_PROVIDER=prometheus", func(c *TopLevel) any { return c.Metrics.Provider }, "prometheus", ""},
		{"metrics bad", "ORDERER_METRICS_PROVIDER=graphite", nil, nil, "must be prometheus, statsd or disabled"},
		{"operations address", "ORDERER_OPERATIONS_LISTENADDRESS=0.0.0.0:9443", func(c *TopLevel) any { return c.Operations.ListenAddress }, "0.0.0.0:9443", ""},
		{"operations bad", "ORDERER_OPERATIONS_LISTENADDRESS=9443", nil, nil, "not a host:port"},
		{"kafka 0.x", "ORDERER_KAFKA_VERSION=0.11.0.2", func(c *TopLevel) any { return c.Kafka.Version }, "0.11.0.2", ""},
		{"kafka 1.0.0", "ORDERER_KAFKA_VERSION=1.0.0", func(c *TopLevel) any { return c.Kafka.Version }, "1.0.0", ""},
		{"kafka 1.0.0.0", "ORDERER_KAFKA_VERSION=1.0.0.0", func(c *TopLevel) any { return c.Kafka.Version }, "1.0.0", ""},
		{"kafka 2.8.1", "ORDERER_KAFKA_VERSION=2.8.1", func(c *TopLevel) any { return c.Kafka.Version }, "2.8.1", ""},
		{"kafka 3.9.0", "ORDERER_KAFKA_VERSION=3.9.0", func(c *TopLevel) any { return c.Kafka.Version }, "3.9.0", ""},
		{"kafka short 0.x", "ORDERER_KAFKA_VERSION=0.10.2", nil, nil, "four components"},
		{"kafka bad", "ORDERER_KAFKA_VERSION=latest", nil, nil, "not a Kafka version"},
		{"kafka too old", "ORDERER_KAFKA_VERSION=0.8.1.0", nil, nil, "older than"},
		{"kafka 4 parts", "ORDERER_KAFKA_VERSION=2.8.1.3", nil, nil, "three components"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := loadDefault(t, tc.env)
			if tc.isErr != "" {
				if err == nil {
					t.Fatalf("%s: no error", tc.env)
				}
				k, v, _ := strings.Cut(tc.env, "=")
				msg := err.Error()
				if !strings.Contains(msg, tc.isErr) || !strings.Contains(msg, k) ||
					!strings.Contains(msg, strings.Trim(strings.TrimSpace(v), `[]"`)) {
					t.Fatalf("%s: error %q should name %s, the value and say %q", tc.env, msg, k, tc.isErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.env, err)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s: got %#v, want %#v", tc.env, got, tc.want)
			}
		})
	}
}

func TestFileVariables(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "s3cret\n")
	port := writeFile(t, dir, "port", "8080\r\n")
	badPort := writeFile(t, dir, "badport", "eighty")
	ca := writeFile(t, dir, "ca.pem", testCert)
	cert := writeFile(t, dir, "cert.pem", testCert)
	key := writeFile(t, dir, "key.pem", testKey)
	missing := filepath.Join(dir, "missing")

	t.Run("path key", func(t *testing.T) {
		c := mustLoad(t, "ORDERER_GENERAL_TLS_PRIVATEKEY_FILE=/etc/tls/server.key",
			"ORDERER_GENERAL_TLS_ROOTCAS_FILE=/etc/tls/ca.crt")
		if c.General.TLS.PrivateKey != "/etc/tls/server.key" ||
			!slices.Equal(c.General.TLS.RootCAs, []string{"/etc/tls/ca.crt"}) {
			t.Errorf("got %q %q", c.General.TLS.PrivateKey, c.General.TLS.RootCAs)
		}
	})
	t.Run("value read from file", func(t *testing.T) {
		c := mustLoad(t, "ORDERER_KAFKA_SASLPLAIN_ENABLED=true", "ORDERER_KAFKA_SASLPLAIN_USER=orderer",
			"ORDERER_KAFKA_SASLPLAIN_PASSWORD_FILE="+pw, "ORDERER_GENERAL_LISTENPORT_FILE="+port)
		if c.Kafka.SASLPlain.Password != "s3cret" || c.General.ListenPort != 8080 {
			t.Errorf("got %q %d", c.Kafka.SASLPlain.Password, c.General.ListenPort)
		}
	})
	t.Run("kafka TLS File sub-key", func(t *testing.T) {
		c := mustLoad(t, "ORDERER_KAFKA_TLS_ENABLED=true", "ORDERER_KAFKA_TLS_ROOTCAS_FILE="+ca,
			"ORDERER_KAFKA_TLS_CERTIFICATE_FILE="+cert, "ORDERER_KAFKA_TLS_PRIVATEKEY_FILE="+key)
		tls := c.Kafka.TLS
		if tls.RootCAs.File != ca || tls.RootCAs.PEM != testCert || tls.PrivateKey.PEM != testKey {
			t.Errorf("got %+v", tls)
		}
	})
	t.Run("kafka TLS inline", func(t *testing.T) {
		c := mustLoad(t, "ORDERER_KAFKA_TLS_ENABLED=true", "ORDERER_KAFKA_TLS_ROOTCAS="+testCert,
			"ORDERER_KAFKA_TLS_CERTIFICATE="+strings.ReplaceAll(testCert, "\n", `\n`),
			"ORDERER_KAFKA_TLS_PRIVATEKEY="+testKey)
		if c.Kafka.TLS.Certificate.PEM != testCert {
			t.Errorf("literal \\n not turned into newlines: %q", c.Kafka.TLS.Certificate.PEM)
		}
	})
	bad := []struct {
		name string
		env  []string
		want []string
	}{
		{"missing file", []string{"ORDERER_KAFKA_SASLPLAIN_PASSWORD_FILE=" + missing},
			[]string{"ORDERER_KAFKA_SASLPLAIN_PASSWORD_FILE", missing, "no such file"}},
		{"bad content", []string{"ORDERER_GENERAL_LISTENPORT_FILE=" + badPort},
			[]string{"ORDERER_GENERAL_LISTENPORT_FILE", badPort, "not an integer"}},
		{"both set", []string{"ORDERER_GENERAL_LISTENPORT=1", "ORDERER_GENERAL_LISTENPORT_FILE=" + port},
			[]string{"ORDERER_GENERAL_LISTENPORT", "ORDERER_GENERAL_LISTENPORT_FILE", "both"}},
		{"kafka TLS missing file", []string{"ORDERER_KAFKA_TLS_ENABLED=true", "ORDERER_KAFKA_TLS_ROOTCAS_FILE=" + missing,
			"ORDERER_KAFKA_TLS_CERTIFICATE=" + testCert, "ORDERER_KAFKA_TLS_PRIVATEKEY=" + testKey},
			[]string{"ORDERER_KAFKA_TLS_ROOTCAS_FILE", missing}},
		{"kafka TLS not PEM", []string{"ORDERER_KAFKA_TLS_ENABLED=true", "ORDERER_KAFKA_TLS_ROOTCAS_FILE=" + pw,
			"ORDERER_KAFKA_TLS_CERTIFICATE=" + testCert, "ORDERER_KAFKA_TLS_PRIVATEKEY=top-secret-key"},
			[]string{"ORDERER_KAFKA_TLS_ROOTCAS_FILE", pw, "no CERTIFICATE PEM block", "ORDERER_KAFKA_TLS_PRIVATEKEY=<redacted>"}},
		{"kafka TLS incomplete", []string{"ORDERER_KAFKA_TLS_ENABLED=true"},
			[]string{"Kafka.TLS.PrivateKey", "Kafka.TLS.RootCAs", "required"}},
		{"SASL incomplete", []string{"ORDERER_KAFKA_SASLPLAIN_ENABLED=true"},
			[]string{"Kafka.SASLPlain.User", "Kafka.SASLPlain.Password"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadDefault(t, tc.env...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "top-secret-key") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	_, warnings, err := loadDefault(t,
		"ORDERER_GENERAL_LISTENPROT=7050", // typo
		"ORDERER_GENERAL_LEDGERTYPE=file", // Fabric 1.x
		"ORDERER_GENERAL_BCCSP_SW_HASH=SHA2",
		"ORDERER_CONSENSUS_WALDIR=/tmp/wal",
		"CORE_PEER_ID=peer0", "PATH=/bin", "no-equals-sign")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 ||
		!strings.Contains(warnings[0], "unknown variable ORDERER_GENERAL_LISTENPROT") ||
		!strings.Contains(warnings[1], "ORDERER_GENERAL_LEDGERTYPE is a Fabric 1.x setting") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestSectionEnv(t *testing.T) {
	c := mustLoad(t, "ORDERER_GENERAL_BCCSP_SW_HASH=SHA3", "ORDERER_CONSENSUS_WALDIR=/tmp/wal")
	if c.General.BCCSP.Env["SW_HASH"] != "SHA3" || c.Consensus.Env["WALDIR"] != "/tmp/wal" {
		t.Errorf("BCCSP %+v, Consensus %+v", c.General.BCCSP, c.Consensus)
	}
}

func TestYAMLFile(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, dir, "kafka/key.pem", testKey)
	cfg := writeFile(t, dir, "orderer.yaml", `
General:
    listenport: 7055          # keys match case-insensitively
    BootstrapFile: blocks/genesis.block
    LocalMSPDir: /abs/msp
    MaxRecvMsgSize: 10 MB
    TLS:
        RootCAs: tls/ca.crt   # a single value for a list
    Unknown: 1
    LedgerType: file
Kafka:
    Brokers:
      - k0:9092
      - k1:9092
    Version: 2.8.1
    TLS:
        Enabled: true
        PrivateKey:
            File: `+key+`
        Certificate: |
            -----BEGIN CERTIFICATE-----
            MIIBszCCAVmgAwIBAgIUQ0k=
            -----END CERTIFICATE-----
        RootCAs:
          - |
            -----BEGIN CERTIFICATE-----
            MIIBszCCAVmgAwIBAgIUQ0k=
            -----END CERTIFICATE-----
RAMLedger:
    HistorySize: 1000
`)
	c, warnings, err := LoadFile(cfg, []string{"ORDERER_KAFKA_VERSION=3.9.0", "ORDERER_FILELEDGER_LOCATION=ledger"})
	if err != nil {
		t.Fatal(err)
	}
	if c.General.ListenPort != 7055 || c.General.MaxRecvMsgSize != 10<<20 {
		t.Errorf("ListenPort %d MaxRecvMsgSize %d", c.General.ListenPort, c.General.MaxRecvMsgSize)
	}
	if c.General.BootstrapFile != filepath.Join(dir, "blocks/genesis.block") || c.General.LocalMSPDir != "/abs/msp" {
		t.Errorf("paths: %q %q", c.General.BootstrapFile, c.General.LocalMSPDir)
	}
	if !slices.Equal(c.General.TLS.RootCAs, []string{filepath.Join(dir, "tls/ca.crt")}) {
		t.Errorf("RootCAs %q", c.General.TLS.RootCAs)
	}
	// Fabric resolves relative paths after merging the environment.
	if c.FileLedger.Location != filepath.Join(dir, "ledger") {
		t.Errorf("FileLedger.Location %q", c.FileLedger.Location)
	}
	if c.Kafka.Version != "3.9.0" {
		t.Errorf("env did not win: Kafka.Version %q", c.Kafka.Version)
	}
	if !slices.Equal(c.Kafka.Brokers, []string{"k0:9092", "k1:9092"}) {
		t.Errorf("Brokers %q", c.Kafka.Brokers)
	}
	if c.Kafka.TLS.PrivateKey.PEM != testKey || c.Kafka.TLS.Certificate.PEM != testCert || c.Kafka.TLS.RootCAs.PEM != testCert {
		t.Errorf("Kafka TLS %+v", c.Kafka.TLS)
	}
	want := []string{":9: General.Unknown: unknown key", ":10: General.LedgerType is a Fabric 1.x key", ":29: RAMLedger is a Fabric 1.x key"}
	if len(warnings) != len(want) {
		t.Fatalf("warnings = %q", warnings)
	}
	for i, w := range want {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warning %q does not contain %q", warnings[i], w)
		}
	}
}

func TestYAMLBadValues(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"int", "General:\n  ListenPort: abc\n", []string{"orderer.yaml:2: General.ListenPort=\"abc\"", "not an integer"}},
		{"duration", "Kafka:\n  Retry:\n    ShortInterval: 0s\n", []string{"orderer.yaml:3: Kafka.Retry.ShortInterval=\"0s\"", "greater than zero"}},
		{"mapping for value", "General:\n  ListenPort:\n    a: 1\n", []string{"General.ListenPort", "expected a single value"}},
		{"value for mapping", "General: 5\n", []string{"General", "expected a mapping"}},
		{"top level", "- a\n- b\n", []string{"(top level)", "expected a mapping"}},
		{"provisional", "General:\n  GenesisMethod: provisional\n", []string{"orderer.yaml:2: General.GenesisMethod=\"provisional\"", "not supported"}},
		{"syntax", "General:\n  ListenPort: [1,\n", []string{"parsing orderer.yaml"}},
		{"list of maps", "Kafka:\n  Brokers:\n    - a: 1\n", []string{"Kafka.Brokers", "single values"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := LoadYAML([]byte(tc.yaml), "", nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestYAMLAnchorsAndMerge(t *testing.T) {
	c, warnings, err := LoadYAML([]byte(`
Operations:
    TLS: &tls
        Enabled: true
        Certificate: /tls/cert
        PrivateKey: /tls/key
Admin:
    TLS:
        <<: *tls
        ClientAuthRequired: true
`), "", nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("err %v, warnings %q", err, warnings)
	}
	if !c.Admin.TLS.Enabled || c.Admin.TLS.Certificate != "/tls/cert" {
		t.Errorf("Admin.TLS %+v", c.Admin.TLS)
	}
}

func TestLegacyGenesisNames(t *testing.T) {
	c, warnings, err := loadDefault(t, "ORDERER_GENERAL_GENESISMETHOD=file", "ORDERER_GENERAL_GENESISFILE=/g.block")
	if err != nil {
		t.Fatal(err)
	}
	if c.General.BootstrapFile != "/g.block" || len(warnings) != 2 ||
		!strings.Contains(warnings[1], "ORDERER_GENERAL_GENESISFILE is deprecated") {
		t.Errorf("BootstrapFile %q, warnings %q", c.General.BootstrapFile, warnings)
	}
	c, warnings, err = loadDefault(t, "ORDERER_GENERAL_BOOTSTRAPMETHOD=none", "ORDERER_GENERAL_GENESISMETHOD=file")
	if err != nil {
		t.Fatal(err)
	}
	if c.General.BootstrapMethod != "none" || len(warnings) != 1 || !strings.Contains(warnings[0], "ignored") {
		t.Errorf("BootstrapMethod %q, warnings %q", c.General.BootstrapMethod, warnings)
	}
	_, _, err = loadDefault(t, "ORDERER_GENERAL_GENESISMETHOD=provisional")
	if err == nil || !strings.Contains(err.Error(), `ORDERER_GENERAL_GENESISMETHOD="provisional"`) {
		t.Errorf("provisional: %v", err)
	}
}

func TestLoadFindsFile(t *testing.T) {
	dir := t.TempDir()
	_, _, err := Load([]string{"FABRIC_CFG_PATH=" + dir})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "orderer.yaml")) {
		t.Fatalf("missing file: %v", err)
	}
	writeFile(t, dir, "orderer.yaml", string(DefaultYAML))
	c, warnings, err := Load([]string{"FABRIC_CFG_PATH=" + dir, "ORDERER_GENERAL_LISTENPORT=7051"})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("err %v, warnings %q", err, warnings)
	}
	if c.SourceFile != filepath.Join(dir, "orderer.yaml") || c.General.ListenPort != 7051 ||
		c.General.LocalMSPDir != filepath.Join(dir, "msp") {
		t.Errorf("SourceFile %q ListenPort %d LocalMSPDir %q", c.SourceFile, c.General.ListenPort, c.General.LocalMSPDir)
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := Defaults()
	c.General.ListenPort = 0
	c.General.BootstrapFile = ""
	c.Kafka.Topic.ReplicationFactor = 0
	c.Metrics.Provider = "statsd"
	c.Metrics.Statsd.Network = "sctp"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"General.ListenPort", "General.BootstrapFile", "Kafka.Topic.ReplicationFactor", "Metrics.Statsd.Network"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
}
