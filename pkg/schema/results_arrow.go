package schema

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// MaxResultsPerBatch bounds the rows of a result batch.
const MaxResultsPerBatch = 4096

// ResultSchema is the Arrow schema of a result batch (on
// <p>.results.arrow.<model>, for analytics): one row per Result, no nullable
// columns or elements, metadata with the schema version, kind "results" and
// the model. Task-specific columns are empty lists (or 0) for other tasks:
//
//   - labels: the predicted labels (classification, multilabel);
//   - classes + scores: every class and its score, classes sorted
//     (classification, multilabel), the JSON "scores" object as two lists;
//   - classes + class_fraction, width, height: segmentation, classes by id;
//   - points: regression points interleaved x0,y0,x1,y1,... (original-frame
//     pixels).
//
// The mask PNG stays in the JSON results only: analytics reads fractions.
func ResultSchema(model string) (*arrow.Schema, error) {
	if err := ValidateModel(model); err != nil {
		return nil, err
	}
	return resultSchema(model), nil
}

func resultSchema(model string) *arrow.Schema {
	md := arrow.NewMetadata(
		[]string{MetaVersion, MetaKind, MetaModel},
		[]string{strconv.Itoa(Version), "results", model},
	)
	strs := arrow.ListOfNonNullable(arrow.BinaryTypes.String)
	f32s := arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)
	return arrow.NewSchema([]arrow.Field{
		{Name: "source", Type: arrow.BinaryTypes.String},
		{Name: "seq", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}},
		{Name: "model", Type: arrow.BinaryTypes.String},
		{Name: "model_version", Type: arrow.BinaryTypes.String},
		{Name: "task", Type: arrow.BinaryTypes.String},
		{Name: "latency_ms", Type: arrow.PrimitiveTypes.Float64},
		{Name: "width", Type: arrow.PrimitiveTypes.Int32},
		{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		{Name: "labels", Type: strs},
		{Name: "classes", Type: strs},
		{Name: "scores", Type: f32s},
		{Name: "class_fraction", Type: f32s},
		{Name: "points", Type: f32s},
	}, &md)
}

const resultCols = 14

// EncodeResults validates results (each for model) and encodes them as Arrow
// IPC stream bytes holding one record batch.
func EncodeResults(mem memory.Allocator, model string, results []Result) ([]byte, error) {
	sch, err := ResultSchema(model)
	if err != nil {
		return nil, err
	}
	if len(results) == 0 || len(results) > MaxResultsPerBatch {
		return nil, fmt.Errorf("%w: results (got=%d, want 1..%d)", ErrInvalid, len(results), MaxResultsPerBatch)
	}
	for i := range results {
		r := &results[i]
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("result %d: %w", i, err)
		}
		if r.Model != model {
			return nil, fmt.Errorf("%w: result %d model (got=%q, want=%q)", ErrInvalid, i, r.Model, model)
		}
	}
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	strCol := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	strList := func(i int, vs []string) {
		lb := b.Field(i).(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.StringBuilder)
		for _, v := range vs {
			vb.Append(v)
		}
	}
	f32List := func(i int, vs []float64) {
		lb := b.Field(i).(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.Float32Builder)
		for _, v := range vs {
			vb.Append(float32(v))
		}
	}
	for _, r := range results {
		strCol(0).Append(r.Source)
		b.Field(1).(*array.Uint64Builder).Append(r.Seq)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.TS.UnixNano()))
		strCol(3).Append(r.Model)
		strCol(4).Append(r.ModelVersion)
		strCol(5).Append(string(r.Task))
		b.Field(6).(*array.Float64Builder).Append(r.LatencyMS)
		b.Field(7).(*array.Int32Builder).Append(int32(r.Width))
		b.Field(8).(*array.Int32Builder).Append(int32(r.Height))
		strList(9, r.Labels)
		classes, scores := r.Classes, []float64(nil)
		if r.Scores != nil {
			classes = slices.Sorted(maps.Keys(r.Scores))
			for _, c := range classes {
				scores = append(scores, r.Scores[c])
			}
		}
		strList(10, classes)
		f32List(11, scores)
		f32List(12, r.ClassFraction)
		var pts []float64
		for _, p := range r.Points {
			pts = append(pts, p.X, p.Y)
		}
		f32List(13, pts)
	}
	rec := b.NewRecord()
	defer rec.Release()
	return writeOne(mem, rec)
}

// DecodeResults decodes and validates Arrow IPC stream bytes made by
// EncodeResults and returns the results (without mask_png, which the Arrow
// batch does not carry; scores and fractions as float32 widened). Malformed
// input gives an error wrapping ErrMalformed, ErrVersion or ErrInvalid,
// never a panic.
func DecodeResults(mem memory.Allocator, b []byte) (_ []Result, err error) {
	defer recoverValidation(&err)
	rec, err := readOne(mem, b)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	sch := rec.Schema()
	model := metaValue(sch.Metadata(), MetaModel)
	if err := ValidateModel(model); err != nil {
		return nil, fmt.Errorf("%w: arrow metadata %s: %w", ErrMalformed, MetaModel, err)
	}
	if err := checkSchema(sch, resultSchema(model)); err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	if n < 1 || n > MaxResultsPerBatch || int(rec.NumCols()) != resultCols {
		return nil, fmt.Errorf("%w: rows x columns (got=%dx%d, want 1..%d x %d)", ErrMalformed, n, rec.NumCols(), MaxResultsPerBatch, resultCols)
	}
	names := make([]string, resultCols)
	for i, f := range sch.Fields() {
		names[i] = f.Name
	}
	for _, i := range []int{0, 3, 4, 5} {
		if err := checkUTF8(names[i], rec.Column(i), n); err != nil {
			return nil, err
		}
	}
	for i, w := range map[int]int{1: 8, 2: 8, 6: 8, 7: 4, 8: 4} {
		if err := checkFixed(names[i], rec.Column(i), n, w); err != nil {
			return nil, err
		}
	}
	lists := map[int]*array.List{}
	for i := 9; i < resultCols; i++ {
		child, err := checkList(names[i], rec.Column(i), n)
		if err != nil {
			return nil, err
		}
		if i <= 10 {
			err = checkUTF8(names[i]+".item", child, child.Len())
		} else {
			err = checkFixed(names[i]+".item", child, child.Len(), 4)
		}
		if err != nil {
			return nil, err
		}
		lists[i] = rec.Column(i).(*array.List)
	}
	str := func(i, row int) string { return rec.Column(i).(*array.String).Value(row) }
	strs := func(i, row int) []string {
		l := lists[i]
		lo, hi := l.ValueOffsets(row)
		if lo == hi {
			return nil
		}
		vs := l.ListValues().(*array.String)
		out := make([]string, 0, hi-lo)
		for j := lo; j < hi; j++ {
			out = append(out, vs.Value(int(j)))
		}
		return out
	}
	f64s := func(i, row int) []float64 {
		l := lists[i]
		lo, hi := l.ValueOffsets(row)
		if lo == hi {
			return nil
		}
		vs := l.ListValues().(*array.Float32)
		out := make([]float64, 0, hi-lo)
		for j := lo; j < hi; j++ {
			out = append(out, float64(vs.Value(int(j))))
		}
		return out
	}
	out := make([]Result, n)
	for row := range n {
		r := Result{
			SchemaVersion: Version,
			Source:        str(0, row),
			Seq:           rec.Column(1).(*array.Uint64).Value(row),
			TS:            time.Unix(0, int64(rec.Column(2).(*array.Timestamp).Value(row))).UTC(),
			Model:         str(3, row),
			ModelVersion:  str(4, row),
			Task:          Task(str(5, row)),
			LatencyMS:     rec.Column(6).(*array.Float64).Value(row),
			Width:         int(rec.Column(7).(*array.Int32).Value(row)),
			Height:        int(rec.Column(8).(*array.Int32).Value(row)),
			Labels:        strs(9, row),
		}
		classes, scores := strs(10, row), f64s(11, row)
		switch r.Task {
		case TaskClassification, TaskMultiLabel:
			if len(scores) != len(classes) {
				return nil, fmt.Errorf("%w: row %d scores (got=%d, want=%d, one per class)", ErrMalformed, row, len(scores), len(classes))
			}
			if classes != nil {
				r.Scores = make(map[string]float64, len(classes))
				for j, c := range classes {
					r.Scores[c] = scores[j]
				}
				if len(r.Scores) != len(classes) {
					return nil, fmt.Errorf("%w: row %d classes repeat (want each once)", ErrMalformed, row)
				}
			}
		default:
			r.Classes = classes
			if scores != nil {
				return nil, fmt.Errorf("%w: row %d scores set for task %s (want none)", ErrMalformed, row, r.Task)
			}
		}
		r.ClassFraction = f64s(12, row)
		pts := f64s(13, row)
		if len(pts)%2 != 0 {
			return nil, fmt.Errorf("%w: row %d points (got=%d values, want x,y pairs)", ErrMalformed, row, len(pts))
		}
		for j := 0; j < len(pts); j += 2 {
			r.Points = append(r.Points, Point{X: pts[j], Y: pts[j+1]})
		}
		if r.Model != model {
			return nil, fmt.Errorf("%w: row %d model (got=%q, want=%q from the metadata)", ErrMalformed, row, r.Model, model)
		}
		if err := r.validate(false); err != nil {
			return nil, fmt.Errorf("%w: row %d: %w", ErrMalformed, row, err)
		}
		out[row] = r
	}
	return out, nil
}
