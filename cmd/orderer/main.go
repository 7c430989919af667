// Command orderer is kord's ordering service daemon: a drop-in replacement for Hyperledger
// Fabric's Kafka-based orderer.
//
//	orderer [start]      run with orderer.yaml from $FABRIC_CFG_PATH and ORDERER_* variables
//	orderer version      print the version
//	orderer dev [flags]  run a self-contained ordering service (in-process Kafka, generated
//	                     crypto and genesis) for development
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/kordhq/kord/config"
	"github.com/kordhq/kord/orderer/logging"
	"github.com/kordhq/kord/orderer/server"
)

// defaultGCPercent replaces Go's default of 100 unless GOGC is set. An orderer's live heap is
// small (tens of MiB: pending batches, in-flight envelopes, caches) while it allocates for
// every envelope it passes; collecting at 4x the live heap instead of 2x takes a visible share
// of CPU back for signature checks at a still small, flat resident size.
const defaultGCPercent = 300

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "start"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "start":
		return start()
	case "version":
		fmt.Printf("orderer (kord):\n Version: %s\n Consensus: kafka\n", server.Version)
		return 0
	case "dev":
		return dev(args)
	case "help", "-h", "--help":
		fmt.Println("usage: orderer [start | version | dev [--dir DIR] [--listen ADDR] [--ops ADDR]]")
		return 0
	default:
		fmt.Fprintf(os.Stderr, "orderer: unknown command %q (want start, version or dev)\n", cmd)
		return 2
	}
}

// newLogging sets up the process's logging from FABRIC_LOGGING_SPEC and FABRIC_LOGGING_FORMAT,
// as Fabric's orderer does. A bad value is reported on stderr.
func newLogging() (*logging.Logging, bool) {
	lg, err := logging.New(logging.Config{
		Spec:   os.Getenv("FABRIC_LOGGING_SPEC"),
		Format: os.Getenv("FABRIC_LOGGING_FORMAT"),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "orderer: FABRIC_LOGGING_SPEC=%q FABRIC_LOGGING_FORMAT=%q: %v\n",
			os.Getenv("FABRIC_LOGGING_SPEC"), os.Getenv("FABRIC_LOGGING_FORMAT"), err)
		return nil, false
	}
	return lg, true
}

// applyConfigLogging honours General.LogLevel and General.LogFormat (Fabric 1.x, still set by
// many docker-compose files as ORDERER_GENERAL_LOGLEVEL) when the FABRIC_ variables are unset.
func applyConfigLogging(lg *logging.Logging, cfg *config.TopLevel, log *slog.Logger) {
	if os.Getenv("FABRIC_LOGGING_SPEC") == "" && cfg.General.LogLevel != "" {
		if err := lg.ActivateSpec(cfg.General.LogLevel); err != nil {
			log.Warn("General.LogLevel ignored", "value", cfg.General.LogLevel, "err", err)
		}
	}
	if os.Getenv("FABRIC_LOGGING_FORMAT") == "" && cfg.General.LogFormat != "" {
		if err := lg.SetFormat(cfg.General.LogFormat); err != nil {
			log.Warn("General.LogFormat ignored", "value", cfg.General.LogFormat, "err", err)
		}
	}
}

func start() int {
	lg, ok := newLogging()
	if !ok {
		return 1
	}
	log := lg.Logger("orderer.common.server")
	cfg, warnings, err := config.Load(os.Environ())
	if err != nil {
		log.Error("configuration", "err", err)
		return 1
	}
	applyConfigLogging(lg, cfg, log)
	for _, w := range warnings {
		log.Warn("configuration", "warning", w)
	}
	return serve(cfg, lg, log, nil)
}

// serve runs an orderer until SIGINT or SIGTERM. ready, if set, runs once the server started.
func serve(cfg *config.TopLevel, lg *logging.Logging, log *slog.Logger, ready func(context.Context, *server.Server) error) int {
	srv, err := server.New(cfg, log, server.WithLogging(lg))
	if err != nil {
		log.Error("cannot start orderer", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start orderer", "err", err)
		srv.Stop()
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if ready != nil {
		if err := ready(ctx, srv); err != nil {
			log.Error("start-up", "err", err)
			srv.Stop()
			return 1
		}
	}
	<-ctx.Done()
	log.Info("stopping orderer")
	srv.Stop()
	return 0
}
