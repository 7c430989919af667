package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/kordhq/kord/kafka/embedded"
)

func init() {
	register("kafka", "run kord's in-process Kafka cluster (kfake) in the foreground", runKafka)
}

// kafkaFlags are the command line of kordctl kafka.
type kafkaFlags struct {
	host    string
	ports   []int
	brokers int
	dir     string
	sync    bool
}

func parseKafkaFlags(args []string) (*kafkaFlags, error) {
	fs := flag.NewFlagSet("kafka", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9092", "IP:PORT of the first broker; the others take the following ports (port 0: ephemeral ports)")
	brokers := fs.Int("brokers", 1, "number of brokers")
	dir := fs.String("dir", "", "keep topics and records in this directory (default: in memory)")
	sync := fs.Bool("sync", false, "with --dir, fsync every produced batch (slower; nothing acknowledged is lost if the process is killed)")
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	host, p, err := net.SplitHostPort(*listen)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--listen %q: %v", *listen, err)}
	}
	if net.ParseIP(host) == nil {
		return nil, usageError{fmt.Sprintf("--listen %q: the host must be an IP address", *listen)}
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return nil, usageError{fmt.Sprintf("--listen %q: bad port", *listen)}
	}
	if *brokers < 1 {
		return nil, usageError{"--brokers must be at least 1"}
	}
	if port != 0 && port+*brokers-1 > 65535 {
		return nil, usageError{fmt.Sprintf("--listen %q: %d brokers do not fit below port 65536", *listen, *brokers)}
	}
	if *sync && *dir == "" {
		return nil, usageError{"--sync needs --dir"}
	}
	k := &kafkaFlags{host: host, brokers: *brokers, dir: *dir, sync: *sync}
	if port != 0 {
		for i := range *brokers {
			k.ports = append(k.ports, port+i)
		}
	}
	return k, nil
}

func runKafka(ctx context.Context, args []string) error {
	k, err := parseKafkaFlags(args)
	if err != nil {
		return err
	}
	cfg := embedded.Config{Brokers: k.brokers, Ports: k.ports, Host: k.host, DataDir: k.dir, SyncWrites: k.sync}
	c, err := embedded.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// The addresses on stdout (one line, comma-separated, for ORDERER_KAFKA_BROKERS or a
	// network.yaml), the rest on stderr.
	fmt.Println(strings.Join(c.Addrs(), ","))
	where := "in memory"
	if k.dir != "" {
		where = "data in " + k.dir
	}
	fmt.Fprintf(os.Stderr, "kafka: %d broker(s) on %s (%s); Ctrl-C stops\n", k.brokers, strings.Join(c.Addrs(), " "), where)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "kafka: stopping")
	return nil
}
