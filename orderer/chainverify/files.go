package chainverify

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	"google.golang.org/protobuf/encoding/protodelim"
)

// BlockFileName is the name `peer channel fetch` gives a block: "<channel>_<number>.block".
func BlockFileName(channelID string, n uint64) string {
	return channelID + "_" + strconv.FormatUint(n, 10) + ".block"
}

// WriteBlockFile writes b as dir/<channel>_<number>.block (the marshalled common.Block).
func WriteBlockFile(dir, channelID string, b *cb.Block) (string, error) {
	raw, err := proto.Marshal(b)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, BlockFileName(channelID, b.GetHeader().GetNumber()))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// ReadBlockFile reads one marshalled block.
func ReadBlockFile(path string) (*cb.Block, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b := &cb.Block{}
	if err := proto.Unmarshal(raw, b); err != nil {
		return nil, fmt.Errorf("%s: not a block: %w", path, err)
	}
	return b, nil
}

// ReadBlockDir reads every "<channel>_<n>.block" of channelID in dir, ordered by number. With
// channelID empty, dir must hold the blocks of exactly one channel, which is returned too.
func ReadBlockDir(dir, channelID string) (string, []*cb.Block, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil, err
	}
	re := regexp.MustCompile(`^(.+)_([0-9]+)\.block$`)
	type file struct {
		n    uint64
		path string
	}
	byChannel := map[string][]file{}
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(m[2], 10, 64)
		if err != nil {
			continue
		}
		byChannel[m[1]] = append(byChannel[m[1]], file{n, filepath.Join(dir, e.Name())})
	}
	if channelID == "" {
		if len(byChannel) != 1 {
			names := make([]string, 0, len(byChannel))
			for k := range byChannel {
				names = append(names, k)
			}
			sort.Strings(names)
			return "", nil, fmt.Errorf("%s holds blocks of %d channels %v; name one", dir, len(byChannel), names)
		}
		for k := range byChannel {
			channelID = k
		}
	}
	files := byChannel[channelID]
	if len(files) == 0 {
		return channelID, nil, fmt.Errorf("%s holds no block of channel %s (files named %s)", dir, channelID, BlockFileName(channelID, 0))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].n < files[j].n })
	out := make([]*cb.Block, 0, len(files))
	for _, f := range files {
		b, err := ReadBlockFile(f.path)
		if err != nil {
			return channelID, nil, err
		}
		if b.GetHeader().GetNumber() != f.n {
			return channelID, nil, fmt.Errorf("%s holds block %d", f.path, b.GetHeader().GetNumber())
		}
		out = append(out, b)
	}
	return channelID, out, nil
}

// StreamWriter writes blocks to a stream, each as a varint length followed by the marshalled
// block (the delimited format of google.golang.org/protobuf/encoding/protodelim). It is what
// `kordctl fetch --out -` prints and `kordctl verify --in -` reads.
type StreamWriter struct{ w io.Writer }

// NewStreamWriter writes to w.
func NewStreamWriter(w io.Writer) *StreamWriter { return &StreamWriter{w: w} }

// Write appends one block.
func (s *StreamWriter) Write(b *cb.Block) error {
	_, err := protodelim.MarshalTo(s.w, proto.MessageV2(b))
	return err
}

// StreamReader reads what a StreamWriter wrote.
type StreamReader struct{ r *bufio.Reader }

// NewStreamReader reads from r.
func NewStreamReader(r io.Reader) *StreamReader {
	return &StreamReader{r: bufio.NewReaderSize(r, 1<<20)}
}

// maxStreamBlock bounds one block of a stream (the orderer's maximum gRPC message).
const maxStreamBlock = 110 << 20

// Read returns the next block, or io.EOF at the end of the stream.
func (s *StreamReader) Read() (*cb.Block, error) {
	b := &cb.Block{}
	err := protodelim.UnmarshalOptions{MaxSize: maxStreamBlock}.UnmarshalFrom(s.r, proto.MessageV2(b))
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("reading a block from the stream: %w", err)
	}
	return b, nil
}
