package data

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"gocv.io/x/gocv"

	"vireo/pkg/video"
)

// vtest-people geometry: MOG2 and the mask clean-up run at half the
// video's 768x576 (384x288); frames and masks are stored at a quarter
// (192x144), small enough for 2-core CPU training.
const (
	peopleWorkW, peopleWorkH = 384, 288
	peopleOutW, peopleOutH   = 192, 144
	peopleHistory            = 800 // MOG2 history: the whole video
	peopleVarThreshold       = 16
)

// Class ids of vtest-people's masks.
const (
	peopleBackground = 0
	peoplePerson     = 1
	peopleVoid       = 2
)

// preparePeople builds vtest-people: MOG2 learns the background over the
// whole of vtest.avi in a first pass; a second pass labels every frame
// (foreground 255 -> person, shadow 127 -> Void), cleaned with an opening
// (3x3 ellipse, specks) and a closing (7x7 ellipse, holes); a 2-pixel band
// (at 384x288) along every person/background border becomes Void; each 2x2
// block then becomes one output pixel (Void if 2+ void, else the majority,
// ties Void). Split by contiguous time: 5 segments, one (by seed) is
// validation, 8 frames dropped on the training side of each boundary.
func preparePeople(ctx context.Context, cfg *PrepareConfig, out string) (*Manifest, error) {
	path := filepath.Join(cfg.VideoDir, "vtest.avi")
	if err := need(path, "opencv-doc"); err != nil {
		return nil, err
	}
	for _, d := range []string{"images", "masks"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return nil, err
		}
	}
	mog := gocv.NewBackgroundSubtractorMOG2WithParams(peopleHistory, peopleVarThreshold, true)
	defer mog.Close()
	total := 0
	// pass 1: learn the background over the whole video
	n, err := eachFrame(ctx, path, peopleWorkW, peopleWorkH, false, cfg.MaxFrames, func(f video.Frame) error {
		cfg.Progress("learn background", int(f.Seq)+1, 0)
		return applyMOG2(&mog, f, nil)
	})
	if err != nil {
		return nil, err
	}
	total = n
	var entries []Entry
	fg := make([]byte, peopleWorkW*peopleWorkH)
	_, err = eachFrame(ctx, path, peopleWorkW, peopleWorkH, false, cfg.MaxFrames, func(f video.Frame) error {
		cfg.Progress("masks", int(f.Seq)+1, total)
		if err := applyMOG2(&mog, f, fg); err != nil {
			return err
		}
		mask, err := peopleMask(fg, peopleWorkW, peopleWorkH)
		if err != nil {
			return err
		}
		small := halve(f.Pixels, peopleWorkW, peopleWorkH, 3)
		name := fmt.Sprintf("f%04d.png", f.Seq)
		if err := WritePNG(filepath.Join(out, "images", name), Image{Pixels: small, Width: peopleOutW, Height: peopleOutH, Channels: 3}); err != nil {
			return err
		}
		if err := WritePNG(filepath.Join(out, "masks", name), Image{Pixels: mask, Width: peopleOutW, Height: peopleOutH, Channels: 1}); err != nil {
			return err
		}
		entries = append(entries, Entry{Name: name, Seq: int(f.Seq)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	split := SegmentSplit{Segments: 5, Valid: 1, Gap: 8, Seed: cfg.Seed}
	tr, va, err := SplitBySegments(split)(entries)
	if err != nil {
		return nil, err
	}
	row := func(e Entry) csvRow {
		return csvRow{"images/" + e.Name, "masks/" + e.Name, strconv.Itoa(e.Seq)}
	}
	hdr := []string{"image", "mask", "frame"}
	if err := writeCSV(filepath.Join(out, "train.csv"), hdr, rowsOf(entries, tr, row)); err != nil {
		return nil, err
	}
	if err := writeCSV(filepath.Join(out, "valid.csv"), hdr, rowsOf(entries, va, row)); err != nil {
		return nil, err
	}
	return &Manifest{
		Task: Segment, Classes: []string{"background", "person", "Void"}, Void: "Void",
		Width: peopleOutW, Height: peopleOutH, Channels: 3, Layout: "csv",
		Train: Part{CSV: "train.csv", Count: len(tr)}, Valid: Part{CSV: "valid.csv", Count: len(va)},
		Source: "Debian opencv-doc vtest.avi; masks are OpenCV MOG2 pseudo ground truth",
		Notes: fmt.Sprintf("MOG2(history=%d, varThreshold=%d, shadows) at %dx%d, 2 passes; open 3x3, close 7x7; border band and shadows Void; stored %dx%d; split %d contiguous segments, %d valid, gap %d",
			peopleHistory, peopleVarThreshold, peopleWorkW, peopleWorkH, peopleOutW, peopleOutH, split.Segments, split.Valid, split.Gap),
	}, nil
}

func rowsOf(es []Entry, idx []int, row func(Entry) csvRow) []csvRow {
	rows := make([]csvRow, len(idx))
	for i, k := range idx {
		rows[i] = row(es[k])
	}
	return rows
}

// eachFrame decodes a video file at w x h (pkg/video: checked before
// OpenCV sees it) and calls fn per frame; it returns the frame count.
func eachFrame(ctx context.Context, path string, w, h int, keepOrig bool, maxFrames int, fn func(video.Frame) error) (int, error) {
	src, err := video.OpenFile(ctx, path, video.Config{Width: w, Height: h, KeepOriginal: keepOrig})
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrData, path, err)
	}
	defer src.Close()
	n := 0
	for maxFrames == 0 || n < maxFrames {
		f, err := src.Next(ctx)
		if errors.Is(err, io.EOF) && !errors.Is(err, video.ErrTruncated) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("%w: %s: %v", ErrData, path, err)
		}
		if err := fn(f); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: %s: no frames decoded", ErrData, path)
	}
	return n, nil
}

// applyMOG2 feeds one BGR frame to the subtractor; fg (when non-nil)
// receives its output (0 background, 127 shadow, 255 foreground).
func applyMOG2(mog *gocv.BackgroundSubtractorMOG2, f video.Frame, fg []byte) error {
	if len(f.Pixels) != f.Width*f.Height*3 {
		return fmt.Errorf("%w: frame %d: %d bytes for %dx%d", ErrData, f.Seq, len(f.Pixels), f.Width, f.Height)
	}
	m, err := gocv.NewMatFromBytes(f.Height, f.Width, gocv.MatTypeCV8UC3, f.Pixels)
	if err != nil {
		return fmt.Errorf("%w: frame %d: %v", ErrData, f.Seq, err)
	}
	defer m.Close()
	out := gocv.NewMat()
	defer out.Close()
	mog.Apply(m, &out)
	if fg == nil {
		return nil
	}
	b := out.ToBytes()
	if out.Rows() != f.Height || out.Cols() != f.Width || len(b) != len(fg) {
		return fmt.Errorf("%w: frame %d: MOG2 mask %dx%d (want %dx%d)", ErrData, f.Seq, out.Cols(), out.Rows(), f.Width, f.Height)
	}
	copy(fg, b)
	return nil
}

// morph applies a morphology op with an elliptic kernel to a binary mask.
func morph(px []byte, w, h int, op gocv.MorphType, k int) ([]byte, error) {
	if len(px) != w*h {
		return nil, fmt.Errorf("%w: morphology: %d bytes for %dx%d", ErrData, len(px), w, h)
	}
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, px)
	if err != nil {
		return nil, fmt.Errorf("%w: morphology: %v", ErrData, err)
	}
	defer m.Close()
	kern := gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(k, k))
	defer kern.Close()
	out := gocv.NewMat()
	defer out.Close()
	gocv.MorphologyEx(m, &out, op, kern)
	return out.ToBytes(), nil
}

// peopleMask turns a MOG2 output at w x h into the class mask at w/2 x h/2.
func peopleMask(fg []byte, w, h int) ([]byte, error) {
	person := make([]byte, len(fg))
	for i, v := range fg {
		if v == 255 {
			person[i] = 255
		}
	}
	var dil, ero []byte
	var err error
	for _, step := range []struct {
		op  gocv.MorphType
		k   int
		dst *[]byte
	}{{gocv.MorphOpen, 3, &person}, {gocv.MorphClose, 7, &person}, {gocv.MorphDilate, 3, &dil}, {gocv.MorphErode, 3, &ero}} {
		if *step.dst, err = morph(person, w, h, step.op, step.k); err != nil {
			return nil, err
		}
	}
	cls := make([]byte, len(fg))
	for i := range cls {
		switch {
		case dil[i] != ero[i]: // the border band
			cls[i] = peopleVoid
		case person[i] != 0:
			cls[i] = peoplePerson
		case fg[i] == 127 || fg[i] == 255: // shadows, and specks the opening removed
			cls[i] = peopleVoid
		default:
			cls[i] = peopleBackground
		}
	}
	ow, oh := w/2, h/2
	out := make([]byte, ow*oh)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var c [3]int
			for k := 0; k < 4; k++ {
				c[cls[(2*y+k>>1)*w+2*x+k&1]]++
			}
			switch {
			case c[peopleVoid] >= 2 || c[peoplePerson] == c[peopleBackground]:
				out[y*ow+x] = peopleVoid
			case c[peoplePerson] > c[peopleBackground]:
				out[y*ow+x] = peoplePerson
			default:
				out[y*ow+x] = peopleBackground
			}
		}
	}
	return out, nil
}

// halve averages 2x2 blocks of an image with c channels.
func halve(px []byte, w, h, c int) []byte {
	ow, oh := w/2, h/2
	out := make([]byte, ow*oh*c)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			for k := 0; k < c; k++ {
				s := int(px[((2*y)*w+2*x)*c+k]) + int(px[((2*y)*w+2*x+1)*c+k]) +
					int(px[((2*y+1)*w+2*x)*c+k]) + int(px[((2*y+1)*w+2*x+1)*c+k])
				out[(y*ow+x)*c+k] = byte((s + 2) / 4)
			}
		}
	}
	return out
}
