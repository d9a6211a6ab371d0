package train

import (
	"math"
	"reflect"
	"testing"

	"vireo/pkg/data"
)

func checkMetric(t *testing.T, got map[string]float64, name string, want float64) {
	t.Helper()
	v, ok := got[name]
	if !ok {
		t.Errorf("metric %s missing (have %v)", name, got)
		return
	}
	if math.Abs(v-want) > 1e-6 {
		t.Errorf("%s = %.9g, want %.9g", name, v, want)
	}
}

func TestAccuracy(t *testing.T) {
	m := NewMetrics(data.Classify, 3, -1, nil)
	// argmax: 1, 0, 2, 0 (first of equal maxima); targets 1, 0, 1, 1.
	out := []float32{1, 2, 0, 3, 0, 0, 0, 0, 5, 1, 1, 0}
	if err := m.Add(out, []float32{1, 0, 1, 1}, 4); err != nil {
		t.Fatal(err)
	}
	checkMetric(t, m.Values(), MetricAccuracy, 0.5)
	// A padded batch: only the first n count.
	if err := m.Add([]float32{0, 9, 0, 9, 0, 0}, []float32{1, 2}, 1); err != nil {
		t.Fatal(err)
	}
	checkMetric(t, m.Values(), MetricAccuracy, 3.0/5)
	if err := m.Add(out[:5], []float32{1, 0}, 2); err == nil {
		t.Error("short output accepted")
	}
	// Per class: 0 right once, predicted for a 1 once; 1 right twice
	// (with the padded batch's), missed twice; 2 predicted for a 1 once.
	wantPC := map[string]ClassCounts{"0": {1, 1, 0}, "1": {2, 0, 2}, "2": {0, 1, 0}}
	if got := m.PerClass(); !reflect.DeepEqual(got, wantPC) {
		t.Errorf("PerClass = %v, want %v", got, wantPC)
	}
}

// TestMultiLabelMetrics: sigmoid(0)=.5, sigmoid(-1)=.269 and sigmoid(3)
// are above 0.2; sigmoid(-1.5)=.182, sigmoid(-2)=.119, sigmoid(-5) below.
//
//	sample 1: pred {0,2}, true {0,1}: 1 of 3 right; TP 1, prec 1/2, rec 1/2, F2 = 5·.25/(4·.5+.5) = 0.5
//	sample 2: pred {1},   true {1,2}: 2 of 3 right; TP 1, prec 1, rec 1/2,  F2 = 5·.5/(4+.5) = 5/9
//	sample 3: pred {},    true {}:    3 of 3 right; TP 0 -> F2 = 0 (fastai's eps)
func TestMultiLabelMetrics(t *testing.T) {
	m := NewMetrics(data.MultiLabel, 3, -1, nil)
	out := []float32{0, -2, -1, -1.5, 3, -2}
	y := []float32{1, 1, 0, 0, 1, 1}
	if err := m.Add(out, y, 2); err != nil {
		t.Fatal(err)
	}
	checkMetric(t, m.Values(), MetricAccuracyThresh, 3.0/6)
	checkMetric(t, m.Values(), MetricFBeta, (0.5+5.0/9)/2)
	if err := m.Add([]float32{-5, -5, -5}, []float32{0, 0, 0}, 1); err != nil {
		t.Fatal(err)
	}
	checkMetric(t, m.Values(), MetricAccuracyThresh, 6.0/9)
	checkMetric(t, m.Values(), MetricFBeta, (0.5+5.0/9+0)/3)
	// Per class: 0 TP in sample 1; 1 FN in sample 1, TP in sample 2; 2 FP
	// in sample 1, FN in sample 2; sample 3 adds nothing.
	wantPC := map[string]ClassCounts{"0": {1, 0, 0}, "1": {1, 0, 1}, "2": {0, 1, 1}}
	if got := m.PerClass(); !reflect.DeepEqual(got, wantPC) {
		t.Errorf("PerClass = %v, want %v", got, wantPC)
	}
	// With threshold 0.3, sigmoid(-1) = .269 is no longer positive:
	// sample 1 pred {0}: 2 of 3 right, prec 1, rec 1/2 -> 5/9.
	m2 := NewMetrics(data.MultiLabel, 3, -1, nil)
	m2.Thresh = 0.3
	if err := m2.Add(out[:3], y[:3], 1); err != nil {
		t.Fatal(err)
	}
	checkMetric(t, m2.Values(), MetricAccuracyThresh, 2.0/3)
	checkMetric(t, m2.Values(), MetricFBeta, 5.0/9)
}

// TestSegmentMetrics: classes background(0), person(1), Void(2).
//
//	batch 1 (1 image 2x2): targets 0 1 / 2 1, predictions 0 0 / 1 1
//	  non-Void pixels 0, 1, 3: correct 0 and 3 -> 2 of 3
//	batch 2 (1 image 2x2): targets 1 1 / 0 2, predictions 1 1 / 1 0
//	  non-Void pixels 0, 1, 2: correct 0, 1 -> 2 of 3
//	acc_no_void = 4/6; the Void pixels' predictions do not count.
//	background: intersection 1 (b1 p0); union b1 {p0,p1} + b2 {p2} = 3 -> 1/3
//	person: intersection 1 (b1 p3) + 2 (b2 p0,p1) = 3; union b1 {p1,p3} + b2 {p0,p1,p2} = 5 -> 3/5
func TestSegmentMetrics(t *testing.T) {
	m := NewMetrics(data.Segment, 3, 2, []string{"background", "person", "Void"})
	// (C,H,W) logits for each image.
	logits := func(pred []int) []float32 {
		out := make([]float32, 3*4)
		for p, c := range pred {
			out[c*4+p] = 1
		}
		return out
	}
	if err := m.Add(logits([]int{0, 0, 1, 1}), []float32{0, 1, 2, 1}, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(logits([]int{1, 1, 1, 0}), []float32{1, 1, 0, 2}, 1); err != nil {
		t.Fatal(err)
	}
	v := m.Values()
	checkMetric(t, v, MetricAccNoVoid, 4.0/6)
	checkMetric(t, v, "iou_background", 1.0/3)
	checkMetric(t, v, "iou_person", 3.0/5)
	if _, ok := v["iou_Void"]; ok {
		t.Error("IoU reported for the Void class")
	}
	js := m.JSON()
	iou, ok := js[MetricIoU].(map[string]float64)
	if !ok || len(iou) != 2 || math.Abs(iou["person"]-0.6) > 1e-9 {
		t.Errorf("JSON iou = %v, want an object with background and person", js[MetricIoU])
	}
}

// TestRegressMetrics: one sample, two points, images 100 wide and 75 high
// (aspect 0.75).
//
//	point 1: pred (0.1, 0.2), true (0, 0): in pixels dx = 0.1/2·100 = 5,
//	  dy = 0.2/2·75 = 7.5, distance 9.0139 -> 0.090139 of the width
//	point 2: pred (-0.5, 0.5), true (-0.5, 0.1): dy = 0.4/2·75 = 15 px -> 0.15
//	mse = (0.01 + 0.04 + 0 + 0.16)/4 = 0.0525
func TestRegressMetrics(t *testing.T) {
	m := NewMetrics(data.Regress, 4, -1, nil)
	m.Aspect = 0.75
	if err := m.Add([]float32{0.1, 0.2, -0.5, 0.5}, []float32{0, 0, -0.5, 0.1}, 1); err != nil {
		t.Fatal(err)
	}
	v := m.Values()
	checkMetric(t, v, MetricMSE, 0.0525)
	checkMetric(t, v, MetricPointError, (math.Sqrt(25+56.25)/100+0.15)/2)
}
