// Command kafkacluster runs an Apache Kafka cluster on 127.0.0.1 until it is interrupted, for
// benchmarks that want a real broker rather than the in-memory `kordctl kafka`
// (bench/sidebyside.sh with BROKER=apache). It uses the installation made by
// integration/apache-kafka/install.sh and the launcher the test suite uses, so the brokers
// run with the Fabric tutorials' settings; with fewer than three brokers the replication
// settings are lowered to the cluster's size, as they must be for acks=all writes to succeed.
//
//	kafkacluster --home .cache/apache-kafka/kafka-3.9.2 --dir /tmp/k --brokers 1 --addrs-file /tmp/k.addrs
//
// Once every broker is up it writes the brokers' addresses, comma-separated, to --addrs-file
// (and stdout). SIGINT or SIGTERM kills the cluster and removes --dir.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kordhq/kord/integration/apachekafka"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafkacluster:", err)
		os.Exit(1)
	}
}

func run() error {
	home := flag.String("home", "", "Apache Kafka installation made by integration/apache-kafka/install.sh (required)")
	dir := flag.String("dir", "", "directory for the processes' configuration, data and logs; removed on exit (required)")
	brokers := flag.Int("brokers", 1, "number of brokers")
	mode := flag.String("mode", "kraft", "metadata mode: kraft or zookeeper")
	heap := flag.Int("heap-mb", 1024, "maximum heap of each broker JVM, in MiB")
	addrsFile := flag.String("addrs-file", "", "file to write the brokers' addresses to once they are up")
	flag.Parse()
	if *home == "" || *dir == "" {
		return fmt.Errorf("--home and --dir are required")
	}
	if *brokers < 1 {
		return fmt.Errorf("--brokers %d: need at least 1", *brokers)
	}
	cfg := apachekafka.Config{Home: *home, Dir: *dir, Brokers: *brokers, HeapMB: *heap, StartTimeout: 3 * time.Minute}
	switch *mode {
	case "kraft":
		cfg.Mode = apachekafka.KRaft
	case "zookeeper":
		cfg.Mode = apachekafka.ZooKeeper
	default:
		return fmt.Errorf("--mode %q: want kraft or zookeeper", *mode)
	}
	if *brokers < 3 {
		n := strconv.Itoa(*brokers)
		cfg.BrokerSettings = map[string]string{
			"default.replication.factor":               n,
			"min.insync.replicas":                      strconv.Itoa(min(2, *brokers)),
			"offsets.topic.replication.factor":         n,
			"transaction.state.log.replication.factor": n,
			"transaction.state.log.min.isr":            strconv.Itoa(min(2, *brokers)),
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := apachekafka.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	addrs := strings.Join(c.Addrs(), ",")
	if *addrsFile != "" {
		if err := os.WriteFile(*addrsFile, []byte(addrs+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Println(addrs)
	<-ctx.Done()
	return nil
}
