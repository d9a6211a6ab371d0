package onnximport

import (
	"fmt"
	"math"

	"vireo/pkg/graph"
)

// Decoders Options.Decode can append to an imported graph.
const (
	DecodeNone = ""
	// DecodeBlazeFace: MediaPipe's BlazeFace front model (128x128, 896
	// anchors, outputs (N,512,1) and (N,384,1) score logits and (N,512,16)
	// and (N,384,16) box+keypoint offsets). See BlazeFacePoints.
	DecodeBlazeFace = "blazeface"
)

// BlazeFacePoints names the points of a DecodeBlazeFace model's output, in
// order: the face box's corners, then MediaPipe's six keypoints (right and
// left are the subject's).
var BlazeFacePoints = []string{
	"box_top_left", "box_bottom_right",
	"right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion",
}

// BlazeFace anchors (MediaPipe's SsdAnchorsCalculator for the front model:
// input 128, strides 8, 16, 16, 16, one aspect ratio, fixed anchor size,
// offset 0.5): layers of the same stride share a grid, so a 16x16 grid
// with 2 anchors per cell, then an 8x8 grid with 6, in (y, x, anchor)
// order, each anchor a centre in [0,1].
const (
	blazeInput   = 128
	blazeAnchors = 16*16*2 + 8*8*6
	blazeRaw     = 16 // box (dx, dy, w, h) + 6 keypoints (dx, dy), in input pixels
	// blazeClip bounds the score logits (MediaPipe's score_clipping_thresh).
	blazeClip = 100
	// blazeBig turns a gap below the best logit into a large negative
	// number (so 1-big*gap is <= 0 for every anchor but the best ones).
	blazeBig = 1e30
)

// blazeAnchorCentres returns the (x, y) centre of each anchor, row-major
// (blazeAnchors, 2).
func blazeAnchorCentres() []float64 {
	out := make([]float64, 0, 2*blazeAnchors)
	for _, l := range []struct{ grid, per int }{{16, 2}, {8, 6}} {
		for y := 0; y < l.grid; y++ {
			for x := 0; x < l.grid; x++ {
				for a := 0; a < l.per; a++ {
					out = append(out, (float64(x)+0.5)/float64(l.grid), (float64(y)+0.5)/float64(l.grid))
				}
			}
		}
	}
	return out
}

// BlazeFaceDecode is the reference of the graph DecodeBlazeFace appends,
// for one image: scores are the 896 logits, raw the 896x16 offsets (the
// model's two outputs of each kind concatenated, 512 anchors first). It
// returns the 8 points of BlazeFacePoints as x0,y0,x1,y1,... in [-1,1] of
// the input (-1 the left/top edge, 1 the right/bottom edge) and the best
// anchor's score (sigmoid of its clipped logit). With several anchors at
// the best logit, their points are averaged.
//
// For the best anchor with centre (ax, ay) in [0,1] and offsets r (input
// pixels): box centre (r0/128+ax, r1/128+ay), size (r2/128, r3/128);
// keypoint k at (r[4+2k]/128+ax, r[5+2k]/128+ay); a coordinate v in [0,1]
// is 2v-1 in the output.
func BlazeFaceDecode(scores, raw []float32) (points []float64, score float64) {
	best := math.Inf(-1)
	for _, s := range scores {
		best = math.Max(best, clip(float64(s)))
	}
	anchors := blazeAnchorCentres()
	points = make([]float64, blazeRaw)
	n := 0
	for i, s := range scores {
		if clip(float64(s)) != best {
			continue
		}
		n++
		r := raw[i*blazeRaw : (i+1)*blazeRaw]
		ax, ay := anchors[2*i], anchors[2*i+1]
		cx, cy := float64(r[0])/blazeInput+ax, float64(r[1])/blazeInput+ay
		w, h := float64(r[2])/blazeInput, float64(r[3])/blazeInput
		p := []float64{cx - w/2, cy - h/2, cx + w/2, cy + h/2}
		for k := 0; k < 6; k++ {
			p = append(p, float64(r[4+2*k])/blazeInput+ax, float64(r[5+2*k])/blazeInput+ay)
		}
		for j, v := range p {
			points[j] += 2*v - 1
		}
	}
	for j := range points {
		points[j] /= float64(n)
	}
	return points, 1 / (1 + math.Exp(-best))
}

func clip(v float64) float64 { return math.Max(-blazeClip, math.Min(blazeClip, v)) }

// appendBlazeFace appends BlazeFaceDecode as graph ops: the graph's
// outputs become "points" (N,16) and "score" (N,1). Every op is in ONNX
// opset 9..17 with the same form (no attribute that became an input), so
// the stored model still runs in ONNX Runtime. The best anchor is picked
// exactly, without a data-dependent gather:
//
//	S  = clip(concat(scores))                 (N,896,1)
//	m  = GlobalMaxPool(S as (N,1,896,1))      best logit
//	oh = Relu(1 - big*(m - S))                1 at the best anchors, else 0
//	w  = oh / sum(oh)                         (N,1,896), via MatMul with ones
//	points = (w @ R) @ A + w @ Off            R (N,896,16) the raw offsets
//	score  = Sigmoid(w @ S)
//
// A (16,16) maps raw offsets to [-1,1] coordinates and Off (896,16) holds
// each anchor's 2*centre-1; a one-hot w selects rows exactly.
func appendBlazeFace(g *graph.Graph, given map[string][]int) error {
	shapes, err := graph.InferShapes(g, probeShapes(g, given))
	if err != nil {
		return err
	}
	find := func(n, k int) (string, error) {
		for _, o := range g.Outputs {
			if s := shapes[o.Name]; len(s) == 3 && s[1] == n && s[2] == k {
				return o.Name, nil
			}
		}
		var got [][]int
		for _, o := range g.Outputs {
			got = append(got, shapes[o.Name])
		}
		return "", fmt.Errorf("%w: decode %s: no output of shape (N,%d,%d) (outputs %v; want BlazeFace front: (N,512,1), (N,384,1), (N,512,16), (N,384,16))",
			ErrInvalid, DecodeBlazeFace, n, k, got)
	}
	var ins [4]string
	for i, nk := range [][2]int{{512, 1}, {384, 1}, {512, blazeRaw}, {384, blazeRaw}} {
		if ins[i], err = find(nk[0], nk[1]); err != nil {
			return err
		}
	}
	inits := make(map[string]*graph.Tensor, len(g.Initializers)+8)
	for k, v := range g.Initializers {
		inits[k] = v
	}
	g.Initializers = inits
	name := func(s string) string { return uniqueName(g, "vireo/blazeface/"+s) }
	constF := func(s string, shape []int, v []float32) string {
		t := &graph.Tensor{Name: name(s), DType: graph.Float32, Shape: shape, Float: v}
		inits[t.Name] = t
		return t.Name
	}
	constI := func(s string, v ...int64) string {
		t := &graph.Tensor{Name: name(s), DType: graph.Int64, Shape: []int{len(v)}, Int: v}
		inits[t.Name] = t
		return t.Name
	}
	node := func(op, out string, attrs map[string]graph.Attr, in ...string) string {
		o := name(out)
		g.Nodes = append(g.Nodes, &graph.Node{Name: o, Op: op, Inputs: in, Outputs: []string{o}, Attrs: attrs})
		return o
	}
	axis1 := map[string]graph.Attr{"axis": {Kind: graph.AttrInt, Int: 1}}

	// A and Off (see BlazeFaceDecode): column 2j is an x, 2j+1 a y.
	a := make([]float32, blazeRaw*blazeRaw)
	set := func(row, col int, v float32) { a[row*blazeRaw+col] = v }
	for c := 0; c < 2; c++ { // box corners: 2*(r_c/128 -/+ r_{2+c}/256)
		set(c, c, 2.0/blazeInput)
		set(2+c, c, -1.0/blazeInput)
		set(c, 2+c, 2.0/blazeInput)
		set(2+c, 2+c, 1.0/blazeInput)
	}
	for j := 4; j < blazeRaw; j++ {
		set(j, j, 2.0/blazeInput)
	}
	anchors := blazeAnchorCentres()
	off := make([]float32, blazeAnchors*blazeRaw)
	for i := 0; i < blazeAnchors; i++ {
		for j := 0; j < blazeRaw; j++ {
			off[i*blazeRaw+j] = float32(2*anchors[2*i+j%2] - 1)
		}
	}
	ones := make([]float32, blazeAnchors)
	for i := range ones {
		ones[i] = 1
	}

	s := node("Concat", "scores", axis1, ins[0], ins[1])
	s = node("Min", "scores_clip_hi", nil, s, constF("clip_hi", []int{1}, []float32{blazeClip}))
	s = node("Max", "scores_clipped", nil, s, constF("clip_lo", []int{1}, []float32{-blazeClip}))
	s4 := node("Reshape", "scores_4d", nil, s, constI("shape_4d", 0, 1, blazeAnchors, 1))
	m := node("GlobalMaxPool", "best_logit", nil, s4)
	gap := node("Sub", "gap", nil, m, s4)
	gap = node("Mul", "gap_big", nil, gap, constF("big", []int{1}, []float32{blazeBig}))
	oh := node("Sub", "one_minus_gap", nil, constF("one", []int{1}, []float32{1}), gap)
	oh = node("Relu", "onehot_4d", nil, oh)
	oh = node("Reshape", "onehot", nil, oh, constI("shape_3d", 0, 1, blazeAnchors))
	cnt := node("MatMul", "count", nil, oh, constF("ones", []int{blazeAnchors, 1}, ones))
	w := node("Div", "weights", nil, oh, cnt)
	r := node("Concat", "raw", axis1, ins[2], ins[3])
	sel := node("MatMul", "raw_best", nil, w, r)
	pa := node("MatMul", "points_offsets", nil, sel, constF("offsets_to_coords", []int{blazeRaw, blazeRaw}, a))
	po := node("MatMul", "points_anchor", nil, w, constF("anchor_coords", []int{blazeAnchors, blazeRaw}, off))
	p := node("Add", "points_3d", nil, pa, po)
	p = node("Flatten", "points", axis1, p)
	sc := node("MatMul", "best_logit_sel", nil, w, s)
	sc = node("Sigmoid", "best_score", nil, sc)
	sc = node("Flatten", "score", axis1, sc)
	g.Outputs = []graph.ValueInfo{
		{Name: p, DType: graph.Float32, Shape: []int{-1, blazeRaw}},
		{Name: sc, DType: graph.Float32, Shape: []int{-1, 1}},
	}
	dropUnread(g)
	return nil
}
