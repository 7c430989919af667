//go:build apachekafka

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/integration/apachekafka"
	"github.com/kordhq/kord/orderer/client"
)

// The Apache Kafka suite (`make test-kafka`, build tag apachekafka) runs the orderer
// processes of the harness on real Apache Kafka clusters started by integration/apachekafka.
// Installation failures fail the suite; nothing is skipped.

var (
	installOnce sync.Once
	kafkaHome   string
	installErr  error
)

// apacheHome installs Apache Kafka once per test binary (a no-op when the cache is warm).
func apacheHome(t *testing.T) string {
	t.Helper()
	installOnce.Do(func() {
		root, err := filepath.Abs("..")
		if err != nil {
			installErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		kafkaHome, installErr = apachekafka.Install(ctx, root, os.Stderr)
	})
	if installErr != nil {
		t.Fatalf("Apache Kafka could not be installed, so the suite cannot run: %v", installErr)
	}
	return kafkaHome
}

// startKafka starts an Apache Kafka cluster for one test; it is killed and its data removed
// when the test ends, whatever the outcome.
func startKafka(t *testing.T, cfg apachekafka.Config) *apachekafka.Cluster {
	t.Helper()
	cfg.Home = apacheHome(t)
	dir, err := os.MkdirTemp("", "kord-apache-kafka-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = dir
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := apachekafka.Start(ctx, cfg)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("starting Apache Kafka (%s): %v", cfg.Mode, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range append([]*apachekafka.Node{c.Meta()}, c.Brokers()...) {
				t.Logf("---- tail of %s's log ----\n%s", n.Name, n.Tail(25))
			}
		}
		c.Close()
	})
	t.Logf("Apache Kafka %s cluster up in %v: brokers %v", cfg.Mode, time.Since(began).Round(time.Millisecond), c.Addrs())
	return c
}

// apacheEnv is the orderer configuration the suite runs with, on top of the harness's.
var apacheEnv = []string{
	"ORDERER_KAFKA_VERSION=2.0.0",
}

// newApacheNetwork sets up n orderers on c (not started).
func newApacheNetwork(t *testing.T, c *apachekafka.Cluster, n int, nc netConfig) *network {
	t.Helper()
	nc.brokers = c.Addrs()
	nc.env = append(append([]string{}, apacheEnv...), nc.env...)
	return newNetworkWith(t, n, nc)
}

// faultTiming logs one measurement in a form that can be collected from the test output:
//
//	FAULT-TIMING <test> <what> <duration>
func faultTiming(t *testing.T, what string, d time.Duration) {
	t.Helper()
	t.Logf("FAULT-TIMING %s %s %v", t.Name(), what, d.Round(time.Millisecond))
}

// event is one Broadcast outcome of the load.
type event struct {
	at      time.Time
	orderer string
	txid    string
	status  cb.Status // SUCCESS, or the refusal
	info    string
	err     error // transport error or no answer in time
}

// load keeps Broadcast clients busy until stopped, like applications that retry: each worker
// sends one envelope at a time on a stream, and after a refusal or a broken stream opens a
// new stream after a short pause. Every outcome is recorded with its time.
type load struct {
	t       *testing.T
	mu      sync.Mutex
	events  []event
	stop    chan struct{}
	wg      sync.WaitGroup
	channel string
}

// answerTimeout is the longest a Broadcast may take to answer: more is a hang.
const answerTimeout = 45 * time.Second

// startLoad runs workers clients per target on channel, each sending at most limit envelopes,
// pace apart.
func (nw *network) startLoad(channel string, targets []*orderer, workers, limit int, pace time.Duration) *load {
	l := &load{t: nw.t, stop: make(chan struct{}), channel: channel}
	for oi, o := range targets {
		for w := range workers {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.worker(nw, o, payloads(uint64(1000+oi*10+w), 0), limit, pace)
			}()
		}
	}
	return l
}

func (l *load) record(e event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) worker(nw *network, o *orderer, data func(int) []byte, limit int, pace time.Duration) {
	conn, err := client.Dial(context.Background(), o.addr(), nil)
	if err != nil {
		l.record(event{at: time.Now(), orderer: o.name, err: err})
		return
	}
	defer conn.Close()
	sent := 0
	for sent < limit && !l.stopped() {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
		if err != nil {
			cancel()
			l.record(event{at: time.Now(), orderer: o.name, err: err})
			l.pause(250 * time.Millisecond)
			continue
		}
		for sent < limit && !l.stopped() {
			env, err := client.Envelope(nw.user, cb.HeaderType_ENDORSER_TRANSACTION, l.channel, data(sent))
			if err != nil {
				l.record(event{at: time.Now(), orderer: o.name, err: err})
				break
			}
			id, _ := client.TxID(env)
			sent++
			if err := stream.Send(env); err != nil {
				l.record(event{at: time.Now(), orderer: o.name, txid: id, err: err})
				break
			}
			type answer struct {
				resp *ab.BroadcastResponse
				err  error
			}
			ch := make(chan answer, 1)
			go func() {
				r, err := stream.Recv()
				ch <- answer{r, err}
			}()
			var a answer
			select {
			case a = <-ch:
			case <-time.After(answerTimeout):
				a.err = fmt.Errorf("no answer within %v (hang)", answerTimeout)
				cancel()
				<-ch
			}
			e := event{at: time.Now(), orderer: o.name, txid: id, err: a.err}
			if a.resp != nil {
				e.status, e.info = a.resp.Status, a.resp.Info
			}
			l.record(e)
			if a.err != nil || a.resp.Status != cb.Status_SUCCESS {
				break // the orderer ends the stream after a refusal
			}
			l.pause(pace)
		}
		cancel()
		l.pause(250 * time.Millisecond)
	}
}

func (l *load) pause(d time.Duration) {
	select {
	case <-l.stop:
	case <-time.After(d):
	}
}

// Stop ends the load and waits for the workers.
func (l *load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// snapshot is a copy of the events so far.
func (l *load) snapshot() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]event(nil), l.events...)
}

// acked are the acknowledged tx IDs.
func (l *load) acked() map[string]string {
	out := map[string]string{}
	for _, e := range l.snapshot() {
		if e.err == nil && e.status == cb.Status_SUCCESS {
			out[e.txid] = e.orderer
		}
	}
	return out
}

// first returns the first event after since that matches, waiting up to timeout for it.
func (l *load) first(since time.Time, timeout time.Duration, match func(event) bool) (event, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range l.snapshot() {
			if e.at.After(since) && match(e) {
				return e, true
			}
		}
		if time.Now().After(deadline) {
			return event{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isSuccess(e event) bool { return e.err == nil && e.status == cb.Status_SUCCESS }

func isRefusal(e event) bool { return e.err == nil && e.status != cb.Status_SUCCESS }

func from(o *orderer, f func(event) bool) func(event) bool {
	return func(e event) bool { return e.orderer == o.name && f(e) }
}

// requireNoHang fails on transport errors and missing answers: the orderers must answer
// every envelope, with SUCCESS or a refusal.
func (l *load) requireNoHang() {
	l.t.Helper()
	n := 0
	for _, e := range l.snapshot() {
		if e.err != nil {
			n++
			if n <= 5 {
				l.t.Errorf("%s at %s: %v", e.orderer, e.at.Format("15:04:05.000"), e.err)
			}
		}
	}
	if n > 0 {
		l.t.Fatalf("%d Broadcast calls ended without an answer", n)
	}
}

// refusals summarises the refusals by status and reason.
func (l *load) refusals() string {
	counts := map[string]int{}
	for _, e := range l.snapshot() {
		if isRefusal(e) {
			info := e.info
			if len(info) > 160 {
				info = info[:160] + "..."
			}
			counts[fmt.Sprintf("%s %s: %s", e.orderer, e.status, info)]++
		}
	}
	var b strings.Builder
	for k, n := range counts {
		fmt.Fprintf(&b, "  %dx %s\n", n, k)
	}
	return b.String()
}

// health reads /healthz: status code and body.
func (o *orderer) health() (int, string) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + o.opsAddr() + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(body))
}

// waitHealth polls /healthz until it answers code (and, if set, a body containing substr)
// and returns how long that took.
func (o *orderer) waitHealth(code int, substr string, timeout time.Duration) time.Duration {
	o.t.Helper()
	began := time.Now()
	var last string
	for {
		c, body := o.health()
		if c == code && strings.Contains(body, substr) {
			return time.Since(began)
		}
		last = fmt.Sprintf("%d %s", c, body)
		if time.Since(began) > timeout {
			o.t.Fatalf("%s: /healthz did not answer %d %q within %v; last: %s", o.name, code, substr, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHealthWithout polls /healthz until its answer names none of components.
func (o *orderer) waitHealthWithout(components []string, timeout time.Duration) {
	o.t.Helper()
	began := time.Now()
	for {
		_, body := o.health()
		found := false
		for _, c := range components {
			found = found || strings.Contains(body, `"`+c+`"`)
		}
		if !found {
			return
		}
		if time.Since(began) > timeout {
			o.t.Fatalf("%s: /healthz still reports one of %v after %v: %s", o.name, components, timeout, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// saramaClient is a plain client on the cluster, for the test's own look-ups and admin.
func saramaClient(t *testing.T, addrs []string) (sarama.Client, sarama.ClusterAdmin) {
	t.Helper()
	conf := sarama.NewConfig()
	conf.Version = sarama.V2_8_0_0
	conf.Net.DialTimeout = 3 * time.Second
	conf.Net.ReadTimeout = 10 * time.Second
	conf.Metadata.AllowAutoTopicCreation = false
	c, err := sarama.NewClient(addrs, conf)
	if err != nil {
		t.Fatalf("test's Kafka client: %v", err)
	}
	a, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return c, a
}

// leaderOf is the broker leading partition 0 of topic.
func leaderOf(t *testing.T, c *apachekafka.Cluster, topic string) *apachekafka.Node {
	t.Helper()
	cl, _ := saramaClient(t, c.Addrs())
	if err := cl.RefreshMetadata(topic); err != nil {
		t.Fatal(err)
	}
	b, err := cl.Leader(topic, 0)
	if err != nil {
		t.Fatalf("leader of %s: %v", topic, err)
	}
	for _, n := range c.Brokers() {
		if int32(n.ID) == b.ID() {
			return n
		}
	}
	t.Fatalf("leader %d of %s is not a broker of the cluster", b.ID(), topic)
	return nil
}

// settle waits until every orderer delivered every acknowledged tx of channel, then checks
// the chains with the harness's checks and with `kordctl verify` (identical, same height).
func (nw *network) settle(channel string, acked map[string]string) {
	t := nw.t
	t.Helper()
	chains := nw.collectChains(channel, acked, 120*time.Second)
	nw.verifyChains(channel, chains)
	for i, ch := range chains {
		if n, _ := verifyTxs(t, ch, acked); n < len(acked) {
			t.Fatalf("%s: %d transactions in the chain, %d acknowledged", nw.orderers[i].name, n, len(acked))
		}
	}
	// Heights may still move by a time-to-cut block for envelopes that were refused but
	// written; wait until all orderers agree, then let kordctl check them.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw.waitSameHeight(ctx, channel)
	out := nw.kordctlVerify(ctx, channel)
	t.Logf("kordctl verify %s:\n%s", channel, out)
}

// waitSameHeight waits until every orderer has the same height for channel, unchanged for
// a moment.
func (nw *network) waitSameHeight(ctx context.Context, channel string) {
	t := nw.t
	t.Helper()
	var prev []uint64
	stable := 0
	for {
		hs := make([]uint64, len(nw.orderers))
		for i, o := range nw.orderers {
			conn := o.dial()
			h, err := height(ctx, conn, nw.user, channel)
			conn.Close()
			if err != nil {
				t.Fatalf("%s: height of %s: %v", o.name, channel, err)
			}
			hs[i] = h
		}
		same := true
		for _, h := range hs {
			same = same && h == hs[0]
		}
		if same && equalHeights(hs, prev) {
			stable++
			if stable >= 2 {
				return
			}
		} else {
			stable = 0
		}
		prev = hs
		select {
		case <-ctx.Done():
			t.Fatalf("heights of %s do not settle: %v", channel, hs)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func equalHeights(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// proxy forwards TCP connections from a local port to a target; cut makes it a black hole
// (existing connections stop forwarding and new ones are accepted but never answered, as in
// a network partition), restore forwards again (connections held during the cut are closed,
// as a partition that outlived TCP timeouts would leave them).
type proxy struct {
	t      *testing.T
	lis    net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, port int, target string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("proxy on port %d: %v", port, err)
	}
	p := &proxy{t: t, lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		cut := p.cut
		p.mu.Unlock()
		if cut {
			continue // held open, never answered, closed at restore or close
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

func (p *proxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 3*time.Second)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 64*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				for p.isCut() {
					// a partition: bytes stop flowing but nothing is closed
					time.Sleep(50 * time.Millisecond)
					if p.closed(src) {
						return
					}
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		p.drop(dst)
		p.drop(src)
	}
	wg.Add(2)
	go pipe(up, c)
	go pipe(c, up)
	wg.Wait()
}

func (p *proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

func (p *proxy) closed(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.conns[c]
	return !ok
}

func (p *proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// setCut starts (true) or ends (false) the partition.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	var stale []net.Conn
	if !cut {
		for c := range p.conns {
			stale = append(stale, c)
		}
	}
	p.mu.Unlock()
	for _, c := range stale {
		p.drop(c)
	}
}

func (p *proxy) close() {
	_ = p.lis.Close()
	p.setCut(false)
	p.wg.Wait()
}

// errAbsent is returned by helpers that look for a log line.
var errAbsent = errors.New("not found")

// waitLog waits until the current run of o logged a line containing substr.
func (o *orderer) waitLog(substr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(o.logSinceStart(), "\n") {
			if strings.Contains(line, substr) {
				return line, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no log line with %q within %v: %w", o.name, substr, timeout, errAbsent)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
