package retrain

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/data"
	"vireo/pkg/model"
	"vireo/pkg/schema"
)

// Errors of the corrections path. Each is wrapped with details.
var (
	// ErrFrameNotKept: a correction names (source, seq) and the frame is
	// in neither FRAMES_KEEP nor the service's copy of corrected frames.
	ErrFrameNotKept = errors.New("retrain: frame not kept")
	// ErrMismatch: a correction does not fit the model (another task, an
	// unknown label, a mask or point count of the wrong size).
	ErrMismatch = errors.New("retrain: correction does not fit the model")
)

// CorrectionID is the Nats-Msg-Id of a correction: a digest of what it
// says (model, frame or image bytes, answer, labeler) without its time
// or the prediction, so a retried submit of the same correction is stored
// once by the CORRECTIONS stream's duplicate window.
func CorrectionID(c *schema.Correction) string {
	h := sha256.New()
	img := sha256.Sum256(c.Image)
	ans, _ := json.Marshal(c.Answer)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%x\x00%s\x00%s", c.Model, c.Task, c.Source, c.Seq, img, ans, c.Labeler)
	return "corr-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// DecodeCorrection parses and validates a correction message's JSON.
func DecodeCorrection(b []byte) (*schema.Correction, error) {
	var c schema.Correction
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: correction: not JSON: %v", schema.ErrInvalid, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// entry is one valid correction of a model in the CORRECTIONS stream.
type entry struct {
	seq     uint64 // stream sequence
	digest  [32]byte
	holdout bool
}

// holdout reports whether the correction with this digest is held out:
// a hash decides, so a correction stays on its side as more arrive.
func isHoldout(d [32]byte, percent int) bool {
	return binary.BigEndian.Uint64(d[:8])%100 < uint64(percent)
}

// schemaTask is the Correction task of a manifest task.
func schemaTask(t model.Task) schema.Task {
	switch t {
	case model.Classify:
		return schema.TaskClassification
	case model.MultiLabel:
		return schema.TaskMultiLabel
	case model.Segment:
		return schema.TaskSegmentation
	case model.Regress:
		return schema.TaskRegression
	}
	return ""
}

// frameObject is the object-store name of a corrected frame's copy.
func frameObject(modelName, source string, seq uint64) string {
	return fmt.Sprintf("%s/%s/%d", modelName, source, seq)
}

// KeptFrame returns the one-frame Arrow batch kept for (model, source,
// seq) in FRAMES_KEEP (ErrFrameNotKept when it is not there: never kept,
// or older than the keep window).
func KeptFrame(ctx context.Context, js jetstream.JetStream, subj schema.Subjects, modelName, source string, seq uint64) ([]byte, error) {
	s, err := subj.Kept(modelName, source, seq)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, subj.StreamName(schema.StreamFramesKeep))
	if err != nil {
		return nil, fmt.Errorf("retrain: stream %s: %w", subj.StreamName(schema.StreamFramesKeep), err)
	}
	m, err := st.GetLastMsgForSubject(ctx, s)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: model %s source %s seq %d (kept frames expire after the keep window)", ErrFrameNotKept, modelName, source, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("retrain: get kept frame %s: %w", s, err)
	}
	return m.Data, nil
}

// frameBytes returns the kept frame a correction names: the service's
// copy when it has one, else FRAMES_KEEP.
func (s *service) frameBytes(ctx context.Context, c *schema.Correction) ([]byte, error) {
	b, err := s.frames.GetBytes(ctx, frameObject(c.Model, c.Source, c.Seq))
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("retrain: corrected frame copy: %w", err)
	}
	return KeptFrame(ctx, s.js, s.subj, c.Model, c.Source, c.Seq)
}

// secureFrame copies the kept frame a correction names into the service's
// object store, where it outlives the keep window.
func (s *service) secureFrame(ctx context.Context, c *schema.Correction) error {
	name := frameObject(c.Model, c.Source, c.Seq)
	if _, err := s.frames.GetInfo(ctx, name); err == nil {
		return nil
	}
	b, err := KeptFrame(ctx, s.js, s.subj, c.Model, c.Source, c.Seq)
	if err != nil {
		return err
	}
	if _, err := s.frames.PutBytes(ctx, name, b); err != nil {
		return fmt.Errorf("retrain: store corrected frame %s: %w", name, err)
	}
	return nil
}

// item turns a correction into a training example for the model of m.
func (s *service) item(ctx context.Context, c *schema.Correction, m model.Manifest) (data.Item, error) {
	if want := schemaTask(m.Task); c.Task != want {
		return data.Item{}, fmt.Errorf("%w: task (got=%s, want=%s)", ErrMismatch, c.Task, want)
	}
	var it data.Item
	origW, origH := 0, 0
	if c.Source != "" {
		b, err := s.frameBytes(ctx, c)
		if err != nil {
			return data.Item{}, err
		}
		fb, err := schema.DecodeFrames(memory.DefaultAllocator, b)
		if err != nil {
			return data.Item{}, fmt.Errorf("retrain: kept frame %s/%d: %w", c.Source, c.Seq, err)
		}
		f := fb.Frame(0)
		it = data.Item{Name: fmt.Sprintf("%s/%d", c.Source, c.Seq), Pixels: slices.Clone(f.Pixels), Width: f.Width, Height: f.Height, Channels: f.Channels}
		origW, origH = f.OrigWidth, f.OrigHeight
		fb.Release()
	} else {
		im, err := data.DecodeImage(c.Image)
		if err != nil {
			return data.Item{}, fmt.Errorf("%w: image: %v", schema.ErrInvalid, err)
		}
		it = data.Item{Name: "image", Pixels: im.Pixels, Width: im.Width, Height: im.Height, Channels: im.Channels}
		origW, origH = im.Width, im.Height
	}
	index := func(l string) (int, error) {
		i := slices.Index(m.Labels, l)
		if i < 0 {
			return 0, fmt.Errorf("%w: label %q is not one of the model's %d labels", ErrMismatch, l, len(m.Labels))
		}
		return i, nil
	}
	switch m.Task {
	case model.Classify:
		i, err := index(c.Label)
		if err != nil {
			return data.Item{}, err
		}
		it.Label = i
	case model.MultiLabel:
		it.Labels = []int{}
		for _, l := range c.Labels {
			i, err := index(l)
			if err != nil {
				return data.Item{}, err
			}
			it.Labels = append(it.Labels, i)
		}
		slices.Sort(it.Labels)
	case model.Segment:
		mask, err := data.DecodeImage(c.MaskPNG)
		if err != nil {
			return data.Item{}, fmt.Errorf("%w: mask_png: %v", schema.ErrInvalid, err)
		}
		if mask.Channels != 1 || mask.Width != it.Width || mask.Height != it.Height {
			return data.Item{}, fmt.Errorf("%w: mask %dx%dx%d (want %dx%dx1, the frame's size)", ErrMismatch, mask.Width, mask.Height, mask.Channels, it.Width, it.Height)
		}
		for _, v := range mask.Pixels {
			if int(v) >= len(m.Labels) {
				return data.Item{}, fmt.Errorf("%w: mask class id %d (want < %d)", ErrMismatch, v, len(m.Labels))
			}
		}
		it.Mask = mask.Pixels
	case model.Regress:
		if len(c.Points) != m.Points {
			return data.Item{}, fmt.Errorf("%w: points (got=%d, want=%d)", ErrMismatch, len(c.Points), m.Points)
		}
		for _, p := range c.Points {
			it.Points = append(it.Points, float32(2*p.X/float64(origW)-1), float32(2*p.Y/float64(origH)-1))
		}
	default:
		return data.Item{}, fmt.Errorf("%w: task %q", ErrMismatch, m.Task)
	}
	return it, nil
}

// correctionDigest identifies a set of corrections: "sha256:" of their
// sorted digests.
func correctionDigest(es []entry) string {
	ds := make([]string, len(es))
	for i, e := range es {
		ds[i] = hex.EncodeToString(e.digest[:])
	}
	slices.Sort(ds)
	sum := sha256.Sum256([]byte(strings.Join(ds, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// items is an in-memory dataset.
type items []data.Item

func (d items) Len() int { return len(d) }
func (d items) Get(i int) (data.Item, error) {
	if i < 0 || i >= len(d) {
		return data.Item{}, fmt.Errorf("%w: item %d of %d", data.ErrData, i, len(d))
	}
	return d[i], nil
}

// concat is a followed by b.
type concat struct{ a, b data.Dataset }

func (d concat) Len() int { return d.a.Len() + d.b.Len() }
func (d concat) Get(i int) (data.Item, error) {
	if i < d.a.Len() {
		return d.a.Get(i)
	}
	return d.b.Get(i - d.a.Len())
}
