// Package fabricsdk proves that an independent Fabric client, Hyperledger's own
// fabric-sdk-go v1.0.0, works against kord as it does against Fabric's orderer: with a
// connection profile and cryptogen-style MSP directories only, the SDK creates a channel
// through kord's system channel (SaveChannel, CONFIG_UPDATE signed by Org1's admin), reads
// the new channel's genesis block back through Deliver (block 0 by number, and the config
// block through newest + LAST_CONFIG), parses its config, and updates the channel with an
// anchor-peer config update it computed itself. Block 0 must be the very block kordctl
// fetches from kord.
//
// This is a Go module of its own so that the SDK's 2020-era dependencies (gRPC 1.29,
// golang/protobuf 1.3, old fabric-protos-go) never enter kord's go.mod. It imports nothing
// from kord: it builds kord's binaries from the repository root and drives them as a user
// would. Run it with `make test-sdk`.
package fabricsdk
