// Package kafka is kord's only door to Apache Kafka. It speaks the log layout
// Fabric's Kafka orderer uses, so kord and Fabric orderers can share one
// cluster:
//
//   - every channel is one topic, named exactly the channel ID, with a single
//     partition 0;
//   - every record carries key "0" and, as its value, a marshalled
//     orderer.KafkaMessage (CONNECT, TIME_TO_CUT or REGULAR), see the codec in
//     codec.go;
//   - records are produced with acks from all in-sync replicas, and read back
//     by offset from partition 0 (the orderer, not Kafka, remembers where it
//     stopped; there are no consumer groups).
//
// The package is built on sarama. Three things are added on top of a plain
// sarama setup:
//
// Version negotiation. Fabric's configuration names a Kafka protocol version
// (default 0.10.2.0) and sarama picks request versions from it without
// raising them to what the broker accepts. Brokers from Kafka 4 on, and the
// in-process kfake cluster, refuse the produce and fetch versions of that era,
// which leaves a sarama client retrying forever. NewSaramaConfig therefore asks
// a broker for its ApiVersions first and moves the configured version up (or
// down) to one the broker accepts; see Negotiate.
//
// Error classes. Callers must tell "Kafka is unavailable, try later"
// (IsUnavailable) from "this message can never be written" (IsMessageTooLarge)
// and from "this offset no longer exists" (IsOffsetOutOfRange), and start-up
// steps must tell errors worth retrying from those that are not
// (NonRetriable, Retry).
//
// Bounded waits. Every call that can wait on the network takes a context
// and, below it, every sarama setting that limits a wait (dial, read, write,
// metadata and produce retries) comes from Options, so nothing here hangs on
// an unreachable or misbehaving cluster.
//
// The subpackage embedded runs an in-process Kafka-compatible cluster for
// development and tests.
package kafka
