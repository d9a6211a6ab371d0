package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"

	"vireo/pkg/graph"
	"vireo/pkg/kernels"
)

// Checkpoint file layout (little endian):
//
//	"VIRCKPT1"                     8 bytes magic (format 1)
//	header length                  uint64
//	header                         JSON (ckptHeader)
//	tensor data                    float32 values, in header order
//	SHA-256 of everything above    32 bytes
//
// The header names every tensor with its shape: the model's initializers
// (parameters and BatchNorm running statistics) and the optimiser state
// of each parameter that has one (kind "a": SGD velocity or AdamW first
// moment, "b": AdamW second moment, with the parameter's step count).
const ckptMagic = "VIRCKPT1"

type ckptTensor struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // "init", "a", "b"
	Shape []int  `json:"shape"`
	Step  int    `json:"step,omitempty"`
}

type ckptHeader struct {
	Arch      string        `json:"arch"`
	Task      string        `json:"task"`
	Size      int           `json:"size"`
	Channels  int           `json:"channels"`
	BatchSize int           `json:"batch_size"`
	Optimizer Optim         `json:"optimizer"`
	FrozenTo  int           `json:"frozen_to"`
	Position  Position      `json:"position"`
	SmAvg     float64       `json:"smooth_avg"`
	SmN       int           `json:"smooth_n"`
	Recorder  Recorder      `json:"recorder"`
	StageLRs  map[int]Rates `json:"stage_lrs,omitempty"`
	Tensors   []ckptTensor  `json:"tensors"`
}

// SaveCheckpoint writes the parameters, running statistics, optimiser
// state, schedule position (stage, epoch), freeze state, input size and
// the recorder to path atomically (temporary file, fsync, rename).
func (l *Learner) SaveCheckpoint(path string) error {
	if err := l.Sync(); err != nil {
		return err
	}
	h := ckptHeader{Arch: l.model.Arch, Task: l.model.Task, Size: l.size, Channels: l.cfg.Channels,
		BatchSize: l.cfg.BatchSize, Optimizer: l.cfg.Optimizer, FrozenTo: l.frozenTo, Position: l.pos,
		SmAvg: l.smAvg, SmN: l.smN, Recorder: l.Rec, StageLRs: l.chosen}
	var vals [][]float32
	names := make([]string, 0, len(l.model.Graph.Initializers))
	for n, t := range l.model.Graph.Initializers {
		if t.DType == graph.Float32 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		t := l.model.Graph.Initializers[n]
		h.Tensors = append(h.Tensors, ckptTensor{Name: n, Kind: "init", Shape: t.Shape})
		vals = append(vals, t.Float)
	}
	optNames := make([]string, 0, len(l.opt))
	for n := range l.opt {
		optNames = append(optNames, n)
	}
	slices.Sort(optNames)
	for _, n := range optNames {
		st := l.opt[n]
		for _, kt := range []struct {
			kind string
			t    *kernels.Tensor
		}{{"a", st.a}, {"b", st.b}} {
			if kt.t == nil {
				continue
			}
			v := make([]float32, kt.t.Numel())
			if err := l.b.Download(v, kt.t); err != nil {
				return err
			}
			h.Tensors = append(h.Tensors, ckptTensor{Name: n, Kind: kt.kind, Shape: kt.t.Shape.Clone(), Step: st.step})
			vals = append(vals, v)
		}
	}
	js, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("train: checkpoint header: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(ckptMagic)
	_ = binary.Write(&buf, binary.LittleEndian, uint64(len(js)))
	buf.Write(js)
	b4 := make([]byte, 4)
	for _, v := range vals {
		for _, f := range v {
			binary.LittleEndian.PutUint32(b4, math.Float32bits(f))
			buf.Write(b4)
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return writeAtomic(path, buf.Bytes())
}

// LoadCheckpoint restores a checkpoint written by SaveCheckpoint for the
// same architecture, task, channels, batch size and optimiser: the weights
// go into the model's graph, the program is recompiled at the saved size,
// and the optimiser state, freeze state, recorder and position are
// restored, so that Run with the same plan continues where it stopped.
func (l *Learner) LoadCheckpoint(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCheckpoint, path, fmt.Sprintf(format, args...))
	}
	if len(raw) < len(ckptMagic)+8+32 || string(raw[:len(ckptMagic)]) != ckptMagic {
		return bad("not a checkpoint (magic %q, want %q)", raw[:min(len(raw), len(ckptMagic))], ckptMagic)
	}
	body, sum := raw[:len(raw)-32], raw[len(raw)-32:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return bad("checksum mismatch (truncated or corrupt file)")
	}
	hl := binary.LittleEndian.Uint64(body[len(ckptMagic):])
	off := uint64(len(ckptMagic) + 8)
	if hl > uint64(len(body))-off {
		return bad("header length %d beyond the file's %d bytes", hl, len(body))
	}
	var h ckptHeader
	if err := json.Unmarshal(body[off:off+hl], &h); err != nil {
		return bad("header: %v", err)
	}
	off += hl
	switch {
	case h.Arch != l.model.Arch || h.Task != l.model.Task:
		return bad("model %s/%s (want %s/%s)", h.Arch, h.Task, l.model.Arch, l.model.Task)
	case h.Channels != l.cfg.Channels || h.BatchSize != l.cfg.BatchSize:
		return bad("channels/batch size %d/%d (want %d/%d)", h.Channels, h.BatchSize, l.cfg.Channels, l.cfg.BatchSize)
	case h.Optimizer != l.cfg.Optimizer:
		return bad("optimizer %s (want %s)", h.Optimizer, l.cfg.Optimizer)
	}
	inits := map[string]*graph.Tensor{}
	type optVal struct {
		v    []float32
		step int
	}
	opt := map[string]map[string]optVal{}
	for _, t := range h.Tensors {
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return bad("tensor %s has shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if uint64(n)*4 > uint64(len(body))-off {
			return bad("tensor %s (%v) beyond the end of the file", t.Name, t.Shape)
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[off+uint64(4*i):]))
		}
		off += uint64(4 * n)
		switch t.Kind {
		case "init":
			cur, ok := l.model.Graph.Initializers[t.Name]
			if !ok {
				return bad("initializer %q is not in model %s", t.Name, l.model.Arch)
			}
			if !slices.Equal(cur.Shape, t.Shape) {
				return bad("initializer %q has shape %v (want %v)", t.Name, t.Shape, cur.Shape)
			}
			inits[t.Name] = &graph.Tensor{Name: t.Name, DType: graph.Float32, Shape: slices.Clone(t.Shape), Float: v}
		case "a", "b":
			cur, ok := l.model.Graph.Initializers[t.Name]
			if !ok || !slices.Equal(cur.Shape, t.Shape) {
				return bad("optimiser state for %q with shape %v does not match the model", t.Name, t.Shape)
			}
			if opt[t.Name] == nil {
				opt[t.Name] = map[string]optVal{}
			}
			opt[t.Name][t.Kind] = optVal{v: v, step: t.Step}
		default:
			return bad("tensor %s has kind %q", t.Name, t.Kind)
		}
	}
	if off != uint64(len(body)) {
		return bad("%d trailing bytes", uint64(len(body))-off)
	}
	for n, t := range l.model.Graph.Initializers {
		if _, ok := inits[n]; !ok && t.DType == graph.Float32 {
			return bad("initializer %q missing", n)
		}
	}
	for n, t := range inits {
		l.model.Graph.Initializers[n] = t
	}
	if err := l.compile(h.Size); err != nil {
		return err
	}
	for _, s := range l.opt {
		l.freeState(s)
	}
	l.opt = map[string]*optState{}
	for n, kinds := range opt {
		st := &optState{}
		for kind, ov := range kinds {
			t, err := l.b.Alloc(kernels.Shape(l.model.Graph.Initializers[n].Shape))
			if err != nil {
				return err
			}
			if err := l.b.Upload(t, ov.v); err != nil {
				return err
			}
			if kind == "a" {
				st.a = t
			} else {
				st.b = t
			}
			st.step = ov.step
		}
		if st.a == nil || (l.cfg.Optimizer == AdamW && st.b == nil) {
			return bad("incomplete optimiser state for %q", n)
		}
		l.opt[n] = st
	}
	l.frozenTo, l.pos, l.smAvg, l.smN, l.Rec, l.chosen = h.FrozenTo, h.Position, h.SmAvg, h.SmN, h.Recorder, h.StageLRs
	return nil
}
