//go:build apachekafka

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/integration/apachekafka"
	"github.com/kordhq/kord/orderer/genesis"
)

const otherChannel = "otherchannel"

// TestApacheBaseline: three orderers on a 3-broker Apache Kafka cluster (KRaft, and once in
// the suite ZooKeeper mode like the tutorials), concurrent Broadcast to all three on two
// channels; every acknowledged envelope is in the chain exactly once, and the three chains of
// every channel are identical (checked by the harness and by `kordctl verify`).
func TestApacheBaseline(t *testing.T) {
	for _, mode := range []apachekafka.Mode{apachekafka.KRaft, apachekafka.ZooKeeper} {
		t.Run(mode.String(), func(t *testing.T) {
			began := time.Now()
			c := startKafka(t, apachekafka.Config{Mode: mode})
			nw := newApacheNetwork(t, c, 3, netConfig{})
			nw.startAll()
			nw.createChannel(appChannel)
			nw.createChannel(otherChannel)
			t.Logf("network up in %v", time.Since(began).Round(time.Millisecond))

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			const streams, perStream = 2, 100
			loadStart := time.Now()
			results := make([][]streamResult, 2)
			done := make(chan int, 2)
			for i, ch := range []string{appChannel, otherChannel} {
				go func() {
					results[i] = runLoad(ctx, t, nw.user, loadSpec{
						channel: ch, targets: nw.orderers, streams: streams, perStream: perStream, bigEvery: 40, seed: uint64(10 + i),
					})
					done <- i
				}()
			}
			<-done
			<-done
			for i, ch := range []string{appChannel, otherChannel} {
				requireAllAcked(t, results[i], perStream)
				acked := map[string]string{}
				ackedSet(t, acked, results[i])
				t.Logf("%s: %d envelopes acknowledged", ch, len(acked))
				nw.settle(ch, acked)
			}
			faultTiming(t, "baseline-load-"+mode.String(), time.Since(loadStart))
			sys := nw.collectAll(genesis.DefaultSystemChannelID)
			nw.verifyChains(genesis.DefaultSystemChannelID, sys)
			if len(sys[0]) != 3 {
				t.Errorf("system channel has %d blocks, want 3", len(sys[0]))
			}
		})
	}
}

// runningLoad starts paced load on appChannel against targets and waits until each target
// acknowledged something, so that faults hit a working system.
func (nw *network) runningLoad(targets []*orderer, workers int) *load {
	t := nw.t
	t.Helper()
	l := nw.startLoad(appChannel, targets, workers, 5000, 20*time.Millisecond)
	t.Cleanup(l.Stop)
	now := time.Now()
	for _, o := range targets {
		if _, ok := l.first(now.Add(-time.Minute), 60*time.Second, from(o, isSuccess)); !ok {
			t.Fatalf("%s acknowledged nothing under load; refusals:\n%s", o.name, l.refusals())
		}
	}
	return l
}

// TestApacheOneBrokerKilled kills the broker leading the channel's partition during load and
// restarts it: ordering goes on (through a new leader), and nothing acknowledged is lost.
func TestApacheOneBrokerKilled(t *testing.T) {
	c := startKafka(t, apachekafka.Config{})
	nw := newApacheNetwork(t, c, 3, netConfig{})
	nw.startAll()
	nw.createChannel(appChannel)
	l := nw.runningLoad(nw.orderers, 2)

	victim := leaderOf(t, c, appChannel)
	killed := time.Now()
	victim.Kill()
	t.Logf("killed %s, leader of %s", victim.Name, appChannel)
	// Ordering goes on: every orderer acknowledges envelopes produced after the failover.
	var worst time.Duration
	for _, o := range nw.orderers {
		e, ok := l.first(killed, 90*time.Second, from(o, isSuccess))
		if !ok {
			t.Fatalf("%s acknowledged nothing within 90s of the broker's death; refusals:\n%s", o.name, l.refusals())
		}
		// An acknowledgement right after the kill may be for a produce that completed before;
		// take the first one after any refusal, if there was a refusal.
		if r, refused := l.first(killed, 0, from(o, isRefusal)); refused {
			if e2, ok := l.first(r.at, 90*time.Second, from(o, isSuccess)); ok {
				e = e2
			}
		}
		worst = max(worst, e.at.Sub(killed))
		t.Logf("%s: first acknowledgement %v after the kill", o.name, e.at.Sub(killed).Round(time.Millisecond))
	}
	faultTiming(t, "one-broker-killed:ordering-resumed", worst)
	time.Sleep(3 * time.Second) // load on two brokers for a while
	restarted := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	faultTiming(t, "one-broker-killed:broker-back", time.Since(restarted))
	time.Sleep(2 * time.Second)
	l.Stop()
	l.requireNoHang()
	t.Logf("refusals during the test:\n%s", l.refusals())
	acked := l.acked()
	t.Logf("%d envelopes acknowledged", len(acked))
	nw.settle(appChannel, acked)
}

// TestApacheTwoBrokersKilled kills two of three brokers: with min.insync.replicas=2 nothing
// can be written, and Broadcast must say SERVICE_UNAVAILABLE within a bounded time (no hang,
// no crash). When the brokers return, ordering resumes without restarting kord, and nothing
// acknowledged before the outage is missing.
func TestApacheTwoBrokersKilled(t *testing.T) {
	c := startKafka(t, apachekafka.Config{})
	nw := newApacheNetwork(t, c, 3, netConfig{})
	nw.startAll()
	nw.createChannel(appChannel)
	l := nw.runningLoad(nw.orderers, 2)

	leader := leaderOf(t, c, appChannel)
	var victims []*apachekafka.Node
	victims = append(victims, leader)
	for _, b := range c.Brokers() {
		if b != leader && len(victims) < 2 {
			victims = append(victims, b)
		}
	}
	killed := time.Now()
	for _, v := range victims {
		v.Kill()
	}
	t.Logf("killed %s and %s", victims[0].Name, victims[1].Name)
	var worst time.Duration
	for _, o := range nw.orderers {
		e, ok := l.first(killed, answerTimeout+30*time.Second, from(o, isRefusal))
		if !ok {
			t.Fatalf("%s did not refuse Broadcast after two brokers died", o.name)
		}
		worst = max(worst, e.at.Sub(killed))
		t.Logf("%s refused after %v: %s %s", o.name, e.at.Sub(killed).Round(time.Millisecond), e.status, e.info)
	}
	faultTiming(t, "two-brokers-killed:broadcast-refused", worst)
	time.Sleep(5 * time.Second)
	for _, o := range nw.orderers {
		if !o.running() {
			t.Fatalf("%s exited during the outage", o.name)
		}
	}
	restarted := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, v := range victims {
		if err := v.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	worst = 0
	for _, o := range nw.orderers {
		e, ok := l.first(restarted, 2*time.Minute, from(o, isSuccess))
		if !ok {
			t.Fatalf("%s did not resume ordering within 2 minutes of the brokers' return; refusals:\n%s", o.name, l.refusals())
		}
		worst = max(worst, e.at.Sub(restarted))
	}
	faultTiming(t, "two-brokers-killed:ordering-resumed-after-restart", worst)
	time.Sleep(2 * time.Second)
	l.Stop()
	l.requireNoHang()
	t.Logf("refusals during the test:\n%s", l.refusals())
	acked := l.acked()
	t.Logf("%d envelopes acknowledged", len(acked))
	nw.settle(appChannel, acked)
}

// TestApacheConnectionCut puts a TCP proxy between orderer0 and every broker and cuts it (a
// partition: bytes stop, nothing is closed) during load. orderer0 must refuse Broadcast with
// SERVICE_UNAVAILABLE within a bounded time and report it on /healthz while the other
// orderers keep ordering; when the connection returns, orderer0 resumes by itself, and all
// chains hold every acknowledged envelope.
func TestApacheConnectionCut(t *testing.T) {
	ports, err := apachekafka.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	c := startKafka(t, apachekafka.Config{ProxyPorts: ports})
	proxies := make([]*proxy, 3)
	for i := range proxies {
		proxies[i] = newProxy(t, ports[i], c.Broker(i).ProxiedTarget())
	}
	nw := newApacheNetwork(t, c, 3, netConfig{ordererBrokers: func(i int) []string {
		if i == 0 {
			return c.ProxyAddrs()
		}
		return nil
	}})
	nw.startAll()
	nw.createChannel(appChannel)
	l := nw.runningLoad(nw.orderers, 2)
	cutOff := nw.orderers[0]

	cut := time.Now()
	for _, p := range proxies {
		p.setCut(true)
	}
	e, ok := l.first(cut, answerTimeout+15*time.Second, from(cutOff, isRefusal))
	if !ok {
		t.Fatalf("%s did not refuse Broadcast after its connection to Kafka was cut", cutOff.name)
	}
	faultTiming(t, "connection-cut:broadcast-refused", e.at.Sub(cut))
	t.Logf("%s refused: %s %s", cutOff.name, e.status, e.info)
	cutOff.waitHealth(503, "kafka/"+appChannel, 90*time.Second)
	faultTiming(t, "connection-cut:healthz-503", time.Since(cut))
	for _, o := range nw.orderers[1:] {
		if _, ok := l.first(cut.Add(5*time.Second), 60*time.Second, from(o, isSuccess)); !ok {
			t.Fatalf("%s stopped ordering while only %s was cut off", o.name, cutOff.name)
		}
	}
	time.Sleep(10 * time.Second)
	restored := time.Now()
	for _, p := range proxies {
		p.setCut(false)
	}
	e, ok = l.first(restored, 2*time.Minute, from(cutOff, isSuccess))
	if !ok {
		t.Fatalf("%s did not resume within 2 minutes of the connection's return; refusals:\n%s", cutOff.name, l.refusals())
	}
	faultTiming(t, "connection-cut:ordering-resumed", e.at.Sub(restored))
	cutOff.waitHealth(200, "", 60*time.Second)
	faultTiming(t, "connection-cut:healthz-200", time.Since(restored))
	time.Sleep(time.Second)
	l.Stop()
	l.requireNoHang()
	t.Logf("refusals during the test:\n%s", l.refusals())
	nw.settle(appChannel, l.acked())
}

// TestApacheOrdererKill9 kills one orderer with SIGKILL under load and restarts it: it
// resumes from its ledger's last offset, and its chain stays identical to the others' - no
// gap, no duplicate block.
func TestApacheOrdererKill9(t *testing.T) {
	c := startKafka(t, apachekafka.Config{})
	nw := newApacheNetwork(t, c, 3, netConfig{})
	nw.startAll()
	nw.createChannel(appChannel)
	victim := nw.orderers[1]
	survivors := nw.runningLoad([]*orderer{nw.orderers[0], nw.orderers[2]}, 2)
	onVictim := nw.runningLoad([]*orderer{victim}, 2)
	time.Sleep(3 * time.Second)
	killed := time.Now()
	victim.kill()
	onVictim.Stop() // its workers' streams broke with the process
	time.Sleep(3 * time.Second)
	victim.start()
	victim.waitReady()
	faultTiming(t, "orderer-kill9:restart-to-healthy", time.Since(killed)-3*time.Second)
	m := connectedRE.FindStringSubmatch(victim.logSinceStart())
	if m == nil {
		t.Fatalf("%s's restart did not log where it resumed", victim.name)
	}
	t.Logf("%s resumed at offset %s with height %s", victim.name, m[1], m[2])
	if m[1] == "0" || m[2] == "1" {
		t.Fatalf("%s did not resume from its ledger (start offset %s, height %s)", victim.name, m[1], m[2])
	}
	after := nw.runningLoad([]*orderer{victim}, 1)
	time.Sleep(3 * time.Second)
	after.Stop()
	survivors.Stop()
	survivors.requireNoHang()
	after.requireNoHang()
	acked := survivors.acked()
	for id, o := range onVictim.acked() {
		acked[id] = o
	}
	for id, o := range after.acked() {
		acked[id] = o
	}
	t.Logf("%d envelopes acknowledged", len(acked))
	nw.settle(appChannel, acked)
}

// TestApacheKafkaNotUp starts orderers while no broker runs. They come up, refuse Broadcast,
// report 503 on /healthz and retry per Kafka.Retry; orderer0 (a long schedule) becomes ready
// once the brokers are up - and not before it can order - while orderer1 (a schedule that
// runs out first) says clearly that its retries are exhausted.
func TestApacheKafkaNotUp(t *testing.T) {
	c := startKafka(t, apachekafka.Config{})
	for _, b := range c.Brokers() {
		b.Kill()
	}
	nw := newApacheNetwork(t, c, 2, netConfig{ordererEnv: func(i int) []string {
		if i == 0 {
			return []string{"ORDERER_KAFKA_RETRY_SHORTINTERVAL=1s", "ORDERER_KAFKA_RETRY_SHORTTOTAL=20s",
				"ORDERER_KAFKA_RETRY_LONGINTERVAL=3s", "ORDERER_KAFKA_RETRY_LONGTOTAL=5m"}
		}
		return []string{"ORDERER_KAFKA_RETRY_SHORTINTERVAL=500ms", "ORDERER_KAFKA_RETRY_SHORTTOTAL=2s",
			"ORDERER_KAFKA_RETRY_LONGINTERVAL=1s", "ORDERER_KAFKA_RETRY_LONGTOTAL=2s"}
	}})
	patient, impatient := nw.orderers[0], nw.orderers[1]
	began := time.Now()
	for _, o := range nw.orderers {
		o.start()
	}
	// Both come up without Kafka and say why they are not ready.
	for _, o := range nw.orderers {
		o.waitHealth(503, "kafka/"+genesis.DefaultSystemChannelID, 30*time.Second)
	}
	conn := patient.dial()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Only the orderer organization may write to the system channel (/Channel/Writers).
	sysWriter := nw.ordererAdmin()
	r := broadcastStream(ctx, conn, sysWriter, genesis.DefaultSystemChannelID, 1, payloads(1, 0), nil)
	if r.status != cb.Status_SERVICE_UNAVAILABLE {
		t.Fatalf("Broadcast without Kafka: %v", r)
	}
	// The retries follow the schedule: at least a few failed attempts are logged.
	if _, err := patient.waitLog(`attempt=3`, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The short schedule runs out: a clear report, on /healthz and in the log.
	impatient.waitHealth(503, "retries exhausted", 60*time.Second)
	faultTiming(t, "kafka-not-up:retries-exhausted-reported", time.Since(began))
	line, err := impatient.waitLog("retries exhausted", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s says: %s", impatient.name, line)
	if !impatient.running() {
		t.Fatalf("%s exited when its retries ran out", impatient.name)
	}
	_, body := impatient.health()
	t.Logf("%s /healthz: %s", impatient.name, body)

	time.Sleep(3 * time.Second)
	if code, body := patient.health(); code != 503 {
		t.Fatalf("%s healthy while no broker runs: %d %s", patient.name, code, body)
	}
	brokersUp := time.Now()
	for _, b := range c.Brokers() {
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	faultTiming(t, "kafka-not-up:brokers-started", time.Since(brokersUp))
	allUp := time.Now()
	patient.waitHealth(200, "", 2*time.Minute)
	faultTiming(t, "kafka-not-up:ready-after-first-broker-start", time.Since(brokersUp))
	faultTiming(t, "kafka-not-up:ready-after-all-brokers-up", time.Since(allUp))
	// Ready means ready: Broadcast succeeds at once.
	r = broadcastStream(ctx, conn, sysWriter, genesis.DefaultSystemChannelID, 1, payloads(2, 0), nil)
	if r.status != 0 || len(r.acked) != 1 {
		t.Fatalf("Broadcast right after /healthz said ready: %v", r)
	}
	// The exhausted orderer stays down until restarted, then works.
	if code, _ := impatient.health(); code != 503 {
		t.Fatalf("%s recovered by itself after its retries were exhausted", impatient.name)
	}
	impatient.stop()
	impatient.start()
	impatient.waitReady()
}

// TestApacheMessageTooLarge sends an envelope above the brokers' message.max.bytes (99 MiB,
// the tutorials' value) but under the channel's AbsoluteMaxBytes, and one above a topic's own
// max.message.bytes (an operator's override that kord does not know of): both are refused
// with BAD_REQUEST and a reason, and the channels keep ordering.
func TestApacheMessageTooLarge(t *testing.T) {
	c := startKafka(t, apachekafka.Config{})
	const absMax = 104_000_000 // under gRPC's 100 MiB maximum message, above message.max.bytes
	nw := newApacheNetwork(t, c, 1, netConfig{absoluteMaxBytes: absMax})
	nw.startAll()
	nw.createChannel(appChannel)
	nw.createChannel(otherChannel)
	_, admin := saramaClient(t, c.Addrs())
	small := "65536"
	if err := admin.AlterConfig(sarama.TopicResource, otherChannel, map[string]*string{"max.message.bytes": &small}, false); err != nil {
		t.Fatalf("setting max.message.bytes of %s: %v", otherChannel, err)
	}
	o := nw.orderers[0]
	conn := o.dial()
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	acked := map[string]map[string]string{appChannel: {}, otherChannel: {}}
	for _, tc := range []struct {
		channel string
		size    int
	}{
		{appChannel, 103_900_000},
		{otherChannel, 100_000},
	} {
		began := time.Now()
		r := broadcastStream(ctx, conn, nw.user, tc.channel, 1, func(int) []byte { return make([]byte, tc.size) }, nil)
		if r.status != cb.Status_BAD_REQUEST || !strings.Contains(r.info, "max") {
			t.Fatalf("%s: envelope of %d bytes: %v", tc.channel, tc.size, r)
		}
		faultTiming(t, "message-too-large:refused-"+tc.channel, time.Since(began))
		t.Logf("%s: %d bytes refused: %s", tc.channel, tc.size, r.info)
		for i := range 3 {
			r := broadcastStream(ctx, conn, nw.user, tc.channel, 10, payloads(uint64(20+i), 0), nil)
			if len(r.acked) != 10 {
				t.Fatalf("%s after the refusal: %v", tc.channel, r)
			}
			ackedSet(t, acked[tc.channel], []streamResult{r})
		}
	}
	for ch, a := range acked {
		nw.settle(ch, a)
	}
}

// TestApacheTopicGone removes what a channel's chain rests on: the offsets an orderer still
// has to read (records deleted, as retention does) and, on another channel, the whole topic.
// The orderers report a clear error naming the channel and the offset, do not silently start
// a new log, and keep ordering the other channels.
func TestApacheTopicGone(t *testing.T) {
	c := startKafka(t, apachekafka.Config{})
	nw := newApacheNetwork(t, c, 2, netConfig{})
	nw.startAll()
	nw.createChannel(appChannel)
	nw.createChannel(otherChannel)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	behind, ahead := nw.orderers[1], nw.orderers[0]
	load := func(o *orderer, channel string, seed uint64) map[string]string {
		conn := o.dial()
		defer conn.Close()
		r := broadcastStream(ctx, conn, nw.user, channel, 20, payloads(seed, 0), nil)
		if len(r.acked) != 20 {
			t.Fatalf("%s on %s: %v", o.name, channel, r)
		}
		a := map[string]string{}
		ackedSet(t, a, []streamResult{r})
		return a
	}
	first := load(ahead, appChannel, 1)
	// behind has written those blocks (its ledger holds Kafka offsets) when it stops.
	bconn := behind.dial()
	if _, err := deliverUntil(ctx, bconn, nw.user, appChannel, first); err != nil {
		t.Fatal(err)
	}
	bconn.Close()
	behind.stop()
	load(ahead, appChannel, 2)
	client, admin := saramaClient(t, c.Addrs())
	hwm, err := client.GetOffset(appChannel, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteRecords(appChannel, map[int32]int64{0: hwm}); err != nil {
		t.Fatalf("deleting the records of %s: %v", appChannel, err)
	}
	restarted := time.Now()
	behind.start()
	behind.waitHealth(503, "offset", 60*time.Second)
	faultTiming(t, "offsets-gone:reported", time.Since(restarted))
	_, body := behind.health()
	t.Logf("%s /healthz: %s", behind.name, body)
	if !strings.Contains(body, "kafka/"+appChannel) || !strings.Contains(body, "out of range") {
		t.Fatalf("/healthz does not name the channel and the lost offsets: %s", body)
	}
	line, err := behind.waitLog("out of range", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s logged: %s", behind.name, line)
	// The other channels work on the same orderer.
	behind.waitHealthWithout([]string{"kafka/" + otherChannel, "kafka/" + genesis.DefaultSystemChannelID}, 60*time.Second)
	load(behind, otherChannel, 3)

	// The whole topic of otherchannel disappears.
	deleted := time.Now()
	if err := admin.DeleteTopic(otherChannel); err != nil {
		t.Fatal(err)
	}
	for _, o := range nw.orderers {
		o.waitHealth(503, "kafka/"+otherChannel, 90*time.Second)
	}
	faultTiming(t, "topic-deleted:reported", time.Since(deleted))
	_, body = ahead.health()
	t.Logf("%s /healthz: %s", ahead.name, body)
	if !strings.Contains(body, "does not exist") {
		t.Fatalf("/healthz does not say the topic is missing: %s", body)
	}
	// mychannel keeps working on the orderer that is not behind.
	load(ahead, appChannel, 4)
	time.Sleep(5 * time.Second)
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics[otherChannel]; ok {
		t.Fatalf("topic %s was created again: a new, empty log would replace the channel's", otherChannel)
	}
	for _, o := range nw.orderers {
		if !o.running() {
			t.Fatalf("%s exited", o.name)
		}
	}
}
