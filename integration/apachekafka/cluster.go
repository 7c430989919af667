// Package apachekafka runs real Apache Kafka clusters on 127.0.0.1 for kord's test suite:
// brokers are JVM processes started from the class path that
// integration/apache-kafka/install.sh fetched from Maven Central, with the broker settings of
// the Fabric Kafka tutorials (min.insync.replicas=2, default.replication.factor=3,
// unclean.leader.election.enable=false, message.max.bytes and replica.fetch.max.bytes of
// 99 MiB, log.retention.ms=-1).
//
// Two shapes are supported: KRaft (one dedicated controller and N brokers, Kafka's current
// mode) and ZooKeeper (one ZooKeeper server and N brokers, the tutorials' mode). Every process
// runs in its own process group, so Kill takes the whole JVM down at once, and Close kills
// everything and removes the data directory. Brokers can be killed and restarted on the same
// ports and data to inject faults.
package apachekafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// Mode is how the cluster keeps its metadata.
type Mode int

const (
	// KRaft is one dedicated controller (node id 100) and the brokers (node ids 1..N).
	KRaft Mode = iota
	// ZooKeeper is one ZooKeeper server and the brokers (broker ids 1..N).
	ZooKeeper
)

func (m Mode) String() string {
	if m == ZooKeeper {
		return "zookeeper"
	}
	return "kraft"
}

// TutorialSettings are the broker settings of the Fabric Kafka tutorials.
var TutorialSettings = map[string]string{
	"min.insync.replicas":            "2",
	"default.replication.factor":     "3",
	"unclean.leader.election.enable": "false",
	"message.max.bytes":              "103809024",
	"replica.fetch.max.bytes":        "103809024",
	"log.retention.ms":               "-1",
}

// testSettings make a 3-broker cluster on one small machine notice failures in seconds rather
// than tens of seconds, and keep internal topics at the cluster's size. They do not change
// the guarantees under test (acks=all with min.insync.replicas=2, no unclean election).
var testSettings = map[string]string{
	"offsets.topic.replication.factor":         "3",
	"transaction.state.log.replication.factor": "3",
	"transaction.state.log.min.isr":            "2",
	"group.initial.rebalance.delay.ms":         "0",
	"replica.lag.time.max.ms":                  "6000",
	"replica.socket.timeout.ms":                "5000",
	"controlled.shutdown.enable":               "true",
	"num.network.threads":                      "2",
	"num.io.threads":                           "4",
	"num.recovery.threads.per.data.dir":        "1",
	"log.flush.interval.messages":              "9223372036854775807",
}

var kraftSettings = map[string]string{
	"broker.heartbeat.interval.ms": "500",
	"broker.session.timeout.ms":    "4000",
}

var zkSettings = map[string]string{
	"zookeeper.session.timeout.ms":    "6000",
	"zookeeper.connection.timeout.ms": "20000",
}

// Config describes a cluster.
type Config struct {
	// Home is the installation made by install.sh (libs/, config/log4j.properties).
	Home string
	// Dir holds every process's configuration, data and logs. It is removed by Close.
	Dir string
	// Mode is KRaft (default) or ZooKeeper.
	Mode Mode
	// Brokers is the number of brokers (default 3).
	Brokers int
	// BrokerSettings override or add broker properties, after TutorialSettings.
	BrokerSettings map[string]string
	// ProxyPorts, if set, gives every broker i a second listener PROXIED, advertised at
	// 127.0.0.1:ProxyPorts[i]; a client bootstrapped through those ports reaches the brokers
	// only through whatever the test runs on them (a TCP proxy). See Node.ProxiedTarget.
	ProxyPorts []int
	// HeapMB is each JVM's maximum heap (default 512; the controller and ZooKeeper get half).
	HeapMB int
	// StartTimeout bounds Start and Node.Start (default 90s).
	StartTimeout time.Duration
	// Java is the java command (default "java" on PATH).
	Java string
}

// Cluster is a running cluster.
type Cluster struct {
	cfg       Config
	clusterID string
	meta      *Node // controller (KRaft) or ZooKeeper
	brokers   []*Node

	closeOnce sync.Once
}

// Node is one JVM process: a broker, the KRaft controller or ZooKeeper.
type Node struct {
	c     *Cluster
	Name  string
	ID    int
	dir   string
	props string // path of the properties file
	class string // main class
	port  int    // client port (PLAINTEXT for brokers, controller or ZooKeeper port)
	proxy int    // PROXIED listener's real port (brokers, with ProxyPorts)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *os.File
}

// Start writes the configuration, formats KRaft storage, starts every process and waits
// until every broker is registered and the cluster can host a topic with replication
// factor N. On error every process already started is killed (Dir is left for inspection;
// Close removes it).
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Home == "" || cfg.Dir == "" {
		return nil, errors.New("apachekafka: Config.Home and Config.Dir are required")
	}
	// Every JVM runs in its own directory, so a relative class path would point nowhere.
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		return nil, fmt.Errorf("apachekafka: Config.Home %q: %w", cfg.Home, err)
	}
	cfg.Home = home
	if _, err := os.Stat(filepath.Join(cfg.Home, "libs")); err != nil {
		return nil, fmt.Errorf("apachekafka: %s is not an installation made by integration/apache-kafka/install.sh: %w", cfg.Home, err)
	}
	if cfg.Brokers <= 0 {
		cfg.Brokers = 3
	}
	if cfg.HeapMB <= 0 {
		cfg.HeapMB = 512
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 90 * time.Second
	}
	if cfg.Java == "" {
		cfg.Java = "java"
	}
	if len(cfg.ProxyPorts) > 0 && len(cfg.ProxyPorts) != cfg.Brokers {
		return nil, fmt.Errorf("apachekafka: %d proxy ports for %d brokers", len(cfg.ProxyPorts), cfg.Brokers)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, clusterID: newClusterID()}
	ports, err := freePorts(1 + 2*cfg.Brokers)
	if err != nil {
		return nil, err
	}
	if cfg.Mode == ZooKeeper {
		c.meta = &Node{c: c, Name: "zookeeper", ID: 0, class: "org.apache.zookeeper.server.ZooKeeperServerMain", port: ports[0]}
	} else {
		c.meta = &Node{c: c, Name: "controller", ID: 100, class: "kafka.Kafka", port: ports[0]}
	}
	for i := range cfg.Brokers {
		b := &Node{c: c, Name: fmt.Sprintf("broker%d", i+1), ID: i + 1, class: "kafka.Kafka", port: ports[1+2*i]}
		if len(cfg.ProxyPorts) > 0 {
			b.proxy = ports[2+2*i]
		}
		c.brokers = append(c.brokers, b)
	}
	for _, n := range c.all() {
		n.dir = filepath.Join(cfg.Dir, n.Name)
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return nil, err
		}
		if err := c.writeConfig(n); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if cfg.Mode == KRaft {
		if err := c.format(ctx); err != nil {
			c.kill()
			return nil, err
		}
	}
	if err := c.meta.launch(); err != nil {
		c.kill()
		return nil, err
	}
	if err := waitPort(ctx, c.meta); err != nil {
		c.kill()
		return nil, err
	}
	for _, b := range c.brokers {
		if err := b.launch(); err != nil {
			c.kill()
			return nil, err
		}
	}
	if err := c.WaitHealthy(ctx); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) all() []*Node { return append([]*Node{c.meta}, c.brokers...) }

// Mode is the cluster's metadata mode.
func (c *Cluster) Mode() Mode { return c.cfg.Mode }

// Addrs are the brokers' PLAINTEXT addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.brokers))
	for i, b := range c.brokers {
		out[i] = b.Addr()
	}
	return out
}

// ProxyAddrs are the addresses the PROXIED listeners advertise (nil without ProxyPorts).
func (c *Cluster) ProxyAddrs() []string {
	if len(c.cfg.ProxyPorts) == 0 {
		return nil
	}
	out := make([]string, len(c.cfg.ProxyPorts))
	for i, p := range c.cfg.ProxyPorts {
		out[i] = hostPort(p)
	}
	return out
}

// Broker is broker i (0-based).
func (c *Cluster) Broker(i int) *Node { return c.brokers[i] }

// Brokers are all brokers.
func (c *Cluster) Brokers() []*Node { return append([]*Node(nil), c.brokers...) }

// Meta is the KRaft controller or the ZooKeeper server.
func (c *Cluster) Meta() *Node { return c.meta }

// Close kills every process and removes Dir. It is safe to call more than once.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		c.kill()
		_ = os.RemoveAll(c.cfg.Dir)
	})
}

func (c *Cluster) kill() {
	var wg sync.WaitGroup
	for _, n := range c.all() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Kill()
		}()
	}
	wg.Wait()
}

// Addr is a broker's PLAINTEXT address (or the controller's / ZooKeeper's client address).
func (n *Node) Addr() string { return hostPort(n.port) }

// ProxiedTarget is the real address of a broker's PROXIED listener: where a test's proxy
// forwards to.
func (n *Node) ProxiedTarget() string { return hostPort(n.proxy) }

// LogPath is the process's log file.
func (n *Node) LogPath() string { return filepath.Join(n.dir, "server.log") }

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	started, ended := n.state()
	return started && !ended
}

// exited reports whether the node was started and its process has ended since.
func (n *Node) exited() bool {
	started, ended := n.state()
	return started && ended
}

// state reads, under one lock, whether the process was started and whether it has ended.
func (n *Node) state() (started, ended bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false, false
	}
	select {
	case <-n.done:
		return true, true
	default:
		return true, false
	}
}

// Kill ends the process group with SIGKILL and waits for it (at most 30s).
func (n *Node) Kill() {
	n.signal(syscall.SIGKILL, 30*time.Second)
}

// Stop ends the process with SIGTERM (a controlled shutdown) and waits up to wait, then
// kills it.
func (n *Node) Stop(wait time.Duration) {
	if !n.signal(syscall.SIGTERM, wait) {
		n.Kill()
	}
}

func (n *Node) signal(sig syscall.Signal, wait time.Duration) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(wait):
		return false
	}
	n.mu.Lock()
	if n.cmd == cmd {
		n.cmd, n.done = nil, nil
		if n.out != nil {
			_ = n.out.Close()
			n.out = nil
		}
	}
	n.mu.Unlock()
	return true
}

// Start starts a stopped node again on the same ports and data, and waits until its port
// accepts connections. Use Cluster.WaitHealthy to wait for the cluster as a whole.
func (n *Node) Start(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("apachekafka: %s is already running", n.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, n.c.cfg.StartTimeout)
	defer cancel()
	for {
		if err := n.launch(); err != nil {
			return err
		}
		err := waitPort(ctx, n)
		if err == nil && n != n.c.meta {
			err = n.waitRegistered(ctx)
		}
		if err == nil {
			return nil
		}
		// A ZooKeeper-mode broker restarted right after a kill finds its previous session's
		// registration until ZooKeeper expires that session, and exits; start it again, as
		// a supervisor would.
		if n.c.cfg.Mode != ZooKeeper || n == n.c.meta || n.Running() || ctx.Err() != nil {
			return err
		}
		n.reap()
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// reap forgets a process that has exited.
func (n *Node) reap() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil {
		<-n.done
	}
	n.cmd, n.done = nil, nil
	if n.out != nil {
		_ = n.out.Close()
		n.out = nil
	}
}

// waitRegistered waits until the broker appears in the cluster metadata it serves.
func (n *Node) waitRegistered(ctx context.Context) error {
	for {
		if !n.Running() {
			return fmt.Errorf("apachekafka: %s exited while starting; tail of its logs:\n%s", n.Name, n.tail(40))
		}
		conf := sarama.NewConfig()
		conf.Version = sarama.V2_8_0_0
		conf.Net.DialTimeout = time.Second
		conf.Net.ReadTimeout = 3 * time.Second
		conf.Metadata.Retry.Max = 0
		if client, err := sarama.NewClient([]string{n.Addr()}, conf); err == nil {
			for _, b := range client.Brokers() {
				if b.ID() == int32(n.ID) {
					_ = client.Close()
					return nil
				}
			}
			_ = client.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("apachekafka: %s not registered: %w", n.Name, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (n *Node) launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("apachekafka: %s is already running", n.Name)
	}
	heap := n.c.cfg.HeapMB
	if n == n.c.meta {
		heap = max(heap/2, 128)
	}
	out, err := os.OpenFile(filepath.Join(n.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "==== %s: starting %s ====\n", time.Now().Format(time.RFC3339Nano), n.Name)
	args := append(jvmArgs(n.c.cfg.Home, n.dir, heap), n.class, n.props)
	cmd := exec.Command(n.c.cfg.Java, args...)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return fmt.Errorf("apachekafka: starting %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.out = cmd, done, out
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

func jvmArgs(home, dir string, heapMB int) []string {
	return []string{
		fmt.Sprintf("-Xmx%dm", heapMB),
		"-Xms64m",
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Djava.net.preferIPv4Stack=true",
		"-Dlog4j.configuration=file:" + filepath.Join(home, "config", "log4j.properties"),
		"-Dkafka.logs.dir=" + dir,
		"-Dzookeeper.admin.enableServer=false",
		"-cp", filepath.Join(home, "libs", "*"),
	}
}

func (c *Cluster) writeConfig(n *Node) error {
	var props map[string]string
	switch {
	case n == c.meta && c.cfg.Mode == ZooKeeper:
		props = map[string]string{
			"dataDir":                filepath.Join(n.dir, "data"),
			"clientPort":             strconv.Itoa(n.port),
			"clientPortAddress":      "127.0.0.1",
			"tickTime":               "1000",
			"maxClientCnxns":         "0",
			"admin.enableServer":     "false",
			"4lw.commands.whitelist": "ruok,srvr",
		}
		n.props = filepath.Join(n.dir, "zoo.cfg")
	case n == c.meta:
		props = map[string]string{
			"process.roles":                         "controller",
			"node.id":                               strconv.Itoa(n.ID),
			"controller.quorum.voters":              c.voters(),
			"listeners":                             "CONTROLLER://" + n.Addr(),
			"controller.listener.names":             "CONTROLLER",
			"listener.security.protocol.map":        "CONTROLLER:PLAINTEXT",
			"log.dirs":                              filepath.Join(n.dir, "data"),
			"num.partitions":                        "1",
			"broker.heartbeat.interval.ms":          kraftSettings["broker.heartbeat.interval.ms"],
			"broker.session.timeout.ms":             kraftSettings["broker.session.timeout.ms"],
			"controller.quorum.election.timeout.ms": "1000",
		}
		n.props = filepath.Join(n.dir, "server.properties")
	default:
		props = map[string]string{}
		for k, v := range TutorialSettings {
			props[k] = v
		}
		for k, v := range testSettings {
			props[k] = v
		}
		listeners := []string{"PLAINTEXT://" + n.Addr()}
		advertised := []string{"PLAINTEXT://" + n.Addr()}
		protoMap := []string{"PLAINTEXT:PLAINTEXT"}
		if n.proxy != 0 {
			listeners = append(listeners, "PROXIED://"+n.ProxiedTarget())
			advertised = append(advertised, "PROXIED://"+hostPort(c.cfg.ProxyPorts[n.ID-1]))
			protoMap = append(protoMap, "PROXIED:PLAINTEXT")
		}
		props["log.dirs"] = filepath.Join(n.dir, "data")
		props["num.partitions"] = "1"
		props["inter.broker.listener.name"] = "PLAINTEXT"
		if c.cfg.Mode == ZooKeeper {
			for k, v := range zkSettings {
				props[k] = v
			}
			props["broker.id"] = strconv.Itoa(n.ID)
			props["zookeeper.connect"] = c.meta.Addr()
		} else {
			for k, v := range kraftSettings {
				props[k] = v
			}
			props["process.roles"] = "broker"
			props["node.id"] = strconv.Itoa(n.ID)
			props["controller.quorum.voters"] = c.voters()
			props["controller.listener.names"] = "CONTROLLER"
			protoMap = append(protoMap, "CONTROLLER:PLAINTEXT")
		}
		props["listeners"] = strings.Join(listeners, ",")
		props["advertised.listeners"] = strings.Join(advertised, ",")
		props["listener.security.protocol.map"] = strings.Join(protoMap, ",")
		for k, v := range c.cfg.BrokerSettings {
			props[k] = v
		}
		n.props = filepath.Join(n.dir, "server.properties")
	}
	return writeProps(n.props, props)
}

func (c *Cluster) voters() string { return fmt.Sprintf("%d@%s", c.meta.ID, c.meta.Addr()) }

func writeProps(path string, props map[string]string) error {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# written by kord's integration/apachekafka\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// format runs Kafka's StorageTool on every KRaft node's log directory.
func (c *Cluster) format(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.all()))
	for i, n := range c.all() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append(jvmArgs(c.cfg.Home, n.dir, 256), "kafka.tools.StorageTool", "format",
				"-t", c.clusterID, "-c", n.props, "--ignore-formatted")
			cmd := exec.CommandContext(ctx, c.cfg.Java, args...)
			cmd.Dir = n.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("apachekafka: formatting %s's storage with cluster ID %q: %w\n%s", n.Name, c.clusterID, err, out)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// WaitHealthy waits until every running broker is registered in the cluster metadata and a
// topic with replication factor equal to the number of running brokers can be created and
// written with acks from all in-sync replicas.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var running []*Node
	for _, b := range c.brokers {
		if b.Running() {
			running = append(running, b)
		}
	}
	if len(running) == 0 {
		return errors.New("apachekafka: no broker is running")
	}
	var last error
	for attempt := 0; ; attempt++ {
		for _, n := range c.all() {
			if n.exited() {
				return fmt.Errorf("apachekafka: %s exited while starting; tail of its logs:\n%s", n.Name, n.tail(40))
			}
		}
		if last = probe(running, c.cfg.Brokers); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("apachekafka: cluster not healthy: %w (last: %v)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var probeSeq int64
var probeMu sync.Mutex

// probe checks that the running brokers see each other and can take an acks=all write.
func probe(running []*Node, total int) error {
	conf := sarama.NewConfig()
	conf.Version = sarama.V2_8_0_0
	conf.ClientID = "kord-apachekafka-probe"
	conf.Net.DialTimeout = 2 * time.Second
	conf.Net.ReadTimeout = 10 * time.Second
	conf.Net.WriteTimeout = 2 * time.Second
	conf.Metadata.Retry.Max = 0
	conf.Metadata.AllowAutoTopicCreation = false
	conf.Producer.RequiredAcks = sarama.WaitForAll
	conf.Producer.Return.Successes = true
	conf.Producer.Retry.Max = 0
	conf.Producer.Timeout = 5 * time.Second
	addrs := make([]string, len(running))
	for i, n := range running {
		addrs[i] = n.Addr()
	}
	client, err := sarama.NewClient(addrs, conf)
	if err != nil {
		return err
	}
	defer client.Close()
	if got := len(client.Brokers()); got != len(running) {
		return fmt.Errorf("%d brokers registered, want %d", got, len(running))
	}
	if len(running) < total {
		return nil // a partial cluster: registration is all that can be asked
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	probeMu.Lock()
	probeSeq++
	topic := fmt.Sprintf("kord-probe-%d-%d", time.Now().UnixNano(), probeSeq)
	probeMu.Unlock()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: int16(total)}, false); err != nil {
		return fmt.Errorf("creating probe topic: %w", err)
	}
	defer func() { _ = admin.DeleteTopic(topic) }()
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return err
	}
	defer prod.Close()
	var perr error
	for range 20 {
		if _, _, perr = prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("probe")}); perr == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
		_ = client.RefreshMetadata(topic)
	}
	return fmt.Errorf("writing to probe topic: %w", perr)
}

func (n *Node) tail(lines int) string {
	var parts []string
	for _, f := range []string{filepath.Join(n.dir, "stdout.log"), n.LogPath()} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		parts = append(parts, "--- "+f+" ---\n"+strings.Join(all, "\n"))
	}
	return strings.Join(parts, "\n")
}

// Tail is the end of the node's logs, for test failure reports.
func (n *Node) Tail(lines int) string { return n.tail(lines) }

// waitPort waits until n accepts TCP connections on its client port.
func waitPort(ctx context.Context, n *Node) error {
	for {
		if !n.Running() {
			return fmt.Errorf("apachekafka: %s exited while starting; tail of its logs:\n%s", n.Name, n.tail(40))
		}
		d := net.Dialer{Timeout: time.Second}
		if conn, err := d.DialContext(ctx, "tcp", n.Addr()); err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("apachekafka: %s does not listen on %s: %w; tail of its logs:\n%s", n.Name, n.Addr(), ctx.Err(), n.tail(40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

// freePorts reserves n distinct free ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("apachekafka: finding a free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// FreePorts reserves n distinct free ports on 127.0.0.1 (for ProxyPorts).
func FreePorts(n int) ([]int, error) { return freePorts(n) }

// newClusterID returns a random KRaft cluster ID: 16 bytes in unpadded base64url. The top
// bit of the first byte is cleared so that the ID never starts with '-' or '_': StorageTool's
// argument parser reads "-t -xyz…" as a missing value followed by an option, and fails with
// "argument --cluster-id/-t: expected one argument" (1 random ID in 64).
func newClusterID() string {
	var b [16]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	b[0] &^= 0x80
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Install runs integration/apache-kafka/install.sh (found from repoRoot) and returns the
// installation's home. Its progress goes to progress (may be nil).
func Install(ctx context.Context, repoRoot string, progress io.Writer) (string, error) {
	script := filepath.Join(repoRoot, "integration", "apache-kafka", "install.sh")
	cmd := exec.CommandContext(ctx, "bash", script)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if progress != nil {
		cmd.Stderr = progress
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apachekafka: %s failed: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	home := strings.TrimSpace(lines[len(lines)-1])
	if home == "" {
		return "", fmt.Errorf("apachekafka: %s printed no installation directory", script)
	}
	return home, nil
}
