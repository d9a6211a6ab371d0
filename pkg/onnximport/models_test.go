package onnximport

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// thirdParty returns the path of a model fetched by `make models-thirdparty`,
// skipping the test when it is missing.
func thirdParty(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s missing: run `make models-thirdparty`", p)
	}
	return p
}

// Real models, as named in `make models-thirdparty`.
const (
	blazeFace = "blazeface/face_detection_front_128x128_barracuda.onnx"
	ocrDet    = "ocr/ch_PP-OCRv4_det_infer.onnx"
	ocrRec    = "ocr/ch_PP-OCRv4_rec_infer.onnx"
	ocrCls    = "ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"
	ocrKeys   = "ocr/ppocr_keys_v1.txt"
)

func TestImportRealModels(t *testing.T) {
	for _, tc := range []struct {
		rel    string
		shapes map[string][]int
		layout string
		static bool
	}{
		{rel: blazeFace, layout: LayoutNHWC, static: true},
		{rel: ocrDet, layout: LayoutNCHW},
		{rel: ocrRec, layout: LayoutNCHW},
		{rel: ocrCls, layout: LayoutNCHW},
		{rel: ocrRec, layout: LayoutNCHW, shapes: map[string][]int{"x": {1, 3, 48, 320}}, static: true},
	} {
		p := thirdParty(t, tc.rel)
		r, err := ImportFile(p, Options{InputShapes: tc.shapes})
		if err != nil {
			t.Fatalf("%s: %v", tc.rel, err)
		}
		rep := r.Report
		t.Logf("%s: opset %d, nodes %d -> %d, folded %d, static %v, layout %s, transposes removed %d, ops %v",
			tc.rel, rep.Opset, rep.NodesIn, rep.NodesOut, rep.Folded, rep.Static, rep.Layout, rep.TransposesRemoved, rep.Ops)
		if rep.Layout != tc.layout || rep.Static != tc.static {
			t.Errorf("%s: layout %s static %v (want %s %v)", tc.rel, rep.Layout, rep.Static, tc.layout, tc.static)
		}
		if rep.Ops["Constant"] != 0 || rep.Ops["ConstantOfShape"] != 0 {
			t.Errorf("%s: Constant nodes left: %v", tc.rel, rep.Ops)
		}
		if tc.static && (rep.Ops["Shape"] != 0 || rep.Ops["Cast"] != 0) {
			t.Errorf("%s: static shapes but shape computations left: %v", tc.rel, rep.Ops)
		}
	}
}
