package main

import (
	_ "github.com/IBM/sarama"
	_ "github.com/hyperledger/fabric-config/configtx"
	_ "github.com/hyperledger/fabric-protos-go/common"
	_ "github.com/hyperledger/fabric-protos-go/orderer"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/syndtr/goleveldb/leveldb"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "google.golang.org/grpc"
	_ "gopkg.in/yaml.v3"
)

func main() {}
