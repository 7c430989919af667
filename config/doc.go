// Package config owns the orderer's local configuration: it finds orderer.yaml
// (FABRIC_CFG_PATH, then the current directory, then /etc/hyperledger/fabric),
// overlays the ORDERER_* environment variables, and returns one typed,
// validated TopLevel. Nothing else in kord reads orderer.yaml or ORDERER_*
// variables; the other packages receive the values they need from TopLevel.
//
// The layout and key names are Fabric v2.5's, so a stock Fabric orderer.yaml
// and the docker-compose environments written for Fabric's Kafka orderer load
// unchanged. The differences from Fabric are deliberate and small:
//
//   - Unknown keys and unknown ORDERER_ variables are warnings, not errors,
//     because Fabric 1.x files carry keys that 2.x dropped and operators
//     should not have to edit them to switch binaries.
//   - Values are checked when loading, and every error names the setting
//     (the variable name, or file:line and key path) and the offending value,
//     instead of Fabric's substitute-a-default-or-panic-later behaviour.
//     Secret values (SASL password, inline PEM) are never echoed.
//   - Kafka.Brokers is a kord extension: a local override of the broker list
//     that Fabric only takes from the channel configuration.
//   - ORDERER_<KEY>_FILE=/some/file names a file for KEY. For the Kafka TLS
//     credentials it sets the File sub-key (ORDERER_KAFKA_TLS_ROOTCAS_FILE is
//     Kafka.TLS.RootCAs.File); for keys that are paths already (TLS files,
//     BootstrapFile, LocalMSPDir, ...) it is the same as ORDERER_<KEY>; for
//     any other key the value is read from the file, without its trailing
//     newline (docker secrets: ORDERER_KAFKA_SASLPLAIN_PASSWORD_FILE). Setting
//     both ORDERER_<KEY> and ORDERER_<KEY>_FILE is an error.
//   - Values are read leniently where Fabric users expect it: booleans in any
//     case (also yes/no/on/off), sizes such as "10 MB" wherever a byte count is
//     expected, lists as "[a,b]", "[a, b]", "['a','b']" or a single value, and
//     one pair of quotes around a value written in compose list form.
//   - An empty value (`Key:` in the file, ORDERER_KEY= in the environment)
//     leaves the default, as in Fabric. An explicit zero where zero makes no
//     sense (retry intervals and timeouts, ports, replication factor, message
//     sizes) is an error; Fabric quietly substituted a built-in default.
//   - The 1.x names General.GenesisMethod and General.GenesisFile stand in for
//     BootstrapMethod and BootstrapFile when those are unset, or set only in
//     the file while the old name comes from the environment (the environment
//     wins over the file); either way with a warning. "provisional" is
//     rejected: Fabric 2.x cannot generate a genesis block either.
//   - When FABRIC_CFG_PATH is set, only that directory is searched; Fabric
//     would also fall back to the current directory and /etc/hyperledger/fabric,
//     which hides a mistyped FABRIC_CFG_PATH.
//
// Relative paths follow Fabric exactly: the TLS files of General.TLS and
// General.Cluster (except the cluster server pair), General.BootstrapFile,
// General.LocalMSPDir and FileLedger.Location are resolved against the
// directory of the configuration file after the environment is merged, so a
// relative path set through ORDERER_* is resolved there too, as Fabric does.
// Other paths (Operations.TLS, Admin.TLS, Kafka.TLS File sub-keys, and the
// files a non-path value is read from through ORDERER_<KEY>_FILE) are used as
// given, relative to the working directory.
package config
