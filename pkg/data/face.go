package data

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"

	"gocv.io/x/gocv"

	"vireo/pkg/video"
)

// megamind-face geometry: Megamind.avi is 720x528; frames are stored at a
// third (240x176). The cascade runs on the full-size gray frame.
const (
	faceOutW, faceOutH = 240, 176
	faceMinSide        = 100 // pixels of the full frame: the main faces, not the diners behind
	faceNeighbours     = 5
)

// prepareFace builds megamind-face: the Haar frontal-face cascade
// (opencv-data) on every frame of Megamind.avi (gray, histogram-equalised,
// scale step 1.1, 5 neighbours, faces of 100+ pixels); frames where it finds
// exactly one face keep that face's centre as the target point. A
// contiguous segment of the kept frames (one of 5, by seed; 3 frames
// dropped on the training side of each boundary) is the validation set.
func prepareFace(ctx context.Context, cfg *PrepareConfig, out string) (*Manifest, error) {
	path := filepath.Join(cfg.VideoDir, "Megamind.avi")
	if err := need(path, "opencv-doc"); err != nil {
		return nil, err
	}
	if err := need(cfg.Cascade, "opencv-data"); err != nil {
		return nil, err
	}
	casc := gocv.NewCascadeClassifier()
	defer casc.Close()
	if !casc.Load(cfg.Cascade) {
		return nil, fmt.Errorf("%w: %s: not a cascade OpenCV can load", ErrData, cfg.Cascade)
	}
	if err := os.MkdirAll(filepath.Join(out, "images"), 0o755); err != nil {
		return nil, err
	}
	type kept struct {
		e    Entry
		x, y float64 // face centre at the stored size
		box  image.Rectangle
	}
	var ks []kept
	var entries []Entry
	seen, none, many := 0, 0, 0
	_, err := eachFrame(ctx, path, faceOutW, faceOutH, true, cfg.MaxFrames, func(f video.Frame) error {
		seen++
		cfg.Progress("faces", seen, 0)
		faces, err := detectFaces(&casc, f)
		if err != nil {
			return err
		}
		switch {
		case len(faces) == 0:
			none++
			return nil
		case len(faces) > 1:
			many++
			return nil
		}
		r := faces[0]
		sx := float64(faceOutW) / float64(f.OrigWidth)
		sy := float64(faceOutH) / float64(f.OrigHeight)
		name := fmt.Sprintf("f%04d.png", f.Seq)
		if err := WritePNG(filepath.Join(out, "images", name), Image{Pixels: f.Pixels, Width: f.Width, Height: f.Height, Channels: 3}); err != nil {
			return err
		}
		e := Entry{Name: name, Seq: int(f.Seq)}
		ks = append(ks, kept{e: e, x: float64(r.Min.X+r.Max.X) / 2 * sx, y: float64(r.Min.Y+r.Max.Y) / 2 * sy, box: r})
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ks) < 10 {
		return nil, fmt.Errorf("%w: %s: only %d frames with exactly one face (want>=10)", ErrData, path, len(ks))
	}
	split := SegmentSplit{Segments: 5, Valid: 1, Gap: 3, Seed: cfg.Seed}
	tr, va, err := SplitBySegments(split)(entries)
	if err != nil {
		return nil, err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	row := func(i int) csvRow {
		k := ks[i]
		return csvRow{"images/" + k.e.Name, f(k.x), f(k.y), strconv.Itoa(k.e.Seq),
			strconv.Itoa(k.box.Min.X), strconv.Itoa(k.box.Min.Y), strconv.Itoa(k.box.Dx()), strconv.Itoa(k.box.Dy())}
	}
	hdr := []string{"image", "x0", "y0", "frame", "face_x", "face_y", "face_w", "face_h"}
	rows := func(idx []int) []csvRow {
		out := make([]csvRow, len(idx))
		for j, i := range idx {
			out[j] = row(i)
		}
		return out
	}
	if err := writeCSV(filepath.Join(out, "train.csv"), hdr, rows(tr)); err != nil {
		return nil, err
	}
	if err := writeCSV(filepath.Join(out, "valid.csv"), hdr, rows(va)); err != nil {
		return nil, err
	}
	return &Manifest{
		Task: Regress, Points: 1, Width: faceOutW, Height: faceOutH, Channels: 3, Layout: "csv",
		Train: Part{CSV: "train.csv", Count: len(tr)}, Valid: Part{CSV: "valid.csv", Count: len(va)},
		Source: "Debian opencv-doc Megamind.avi; face centres from the opencv-data Haar frontal-face cascade (pseudo ground truth)",
		Notes: fmt.Sprintf("%d frames: %d with one face kept, %d with none, %d with several; x0,y0 in pixels of the stored %dx%d image; face_* is the box in the original frame; split %d contiguous segments, %d valid, gap %d",
			seen, len(ks), none, many, faceOutW, faceOutH, split.Segments, split.Valid, split.Gap),
	}, nil
}

// detectFaces runs the cascade on a frame's full-size pixels.
func detectFaces(casc *gocv.CascadeClassifier, f video.Frame) ([]image.Rectangle, error) {
	if len(f.Orig) != f.OrigWidth*f.OrigHeight*3 || f.OrigWidth < 1 {
		return nil, fmt.Errorf("%w: frame %d: no full-size pixels", ErrData, f.Seq)
	}
	m, err := gocv.NewMatFromBytes(f.OrigHeight, f.OrigWidth, gocv.MatTypeCV8UC3, f.Orig)
	if err != nil {
		return nil, fmt.Errorf("%w: frame %d: %v", ErrData, f.Seq, err)
	}
	defer m.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(m, &gray, gocv.ColorBGRToGray)
	gocv.EqualizeHist(gray, &gray)
	return casc.DetectMultiScaleWithParams(gray, 1.1, faceNeighbours, 0, image.Pt(faceMinSide, faceMinSide), image.Pt(0, 0)), nil
}
