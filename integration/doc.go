// Package integration holds kord's multi-process tests: real orderer processes (built from
// cmd/orderer) talking over TCP to an in-process kfake Kafka cluster, driven by real gRPC
// Broadcast and Deliver clients. Everything lives in the _test.go files; run them with
//
//	go test -race -count=1 ./integration/
//
// KORD_INTEGRATION_RACE=1 also builds the orderer daemon with -race.
package integration
