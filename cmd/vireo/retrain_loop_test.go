package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/backend"
	"vireo/pkg/data"
	"vireo/pkg/kernels"
	"vireo/pkg/model"
	"vireo/pkg/modelstore"
	"vireo/pkg/predict"
	"vireo/pkg/schema"
	"vireo/pkg/video"
	"vireo/services/retrain"
)

// Sizes of the retrain-loop test: corrections submitted (the count
// trigger is set to this, so the last one starts the run) and the
// camera's frame rate.
const (
	loopCorrections = 60
	loopFPS         = 25
	loopSource      = "vtest"
)

// loopRetrainConfig is the retrain settings file the test passes with
// --retrain-config: the defaults (lr 1e-4, corrections weighted 2, one
// head and one body epoch, the replay distilled from the serving version
// with weight 2 at temperature 2), with the replay size spelled out. The
// earlier defaults (lr 1e-3, corrections repeated 4 times, 2 body epochs)
// swung this model's shirt/tshirt boundary so far that t-shirt accuracy
// fell from 0.85 to 0.30-0.41 and the gate refused every candidate;
// without distillation t-shirts still fell 11-13 points and the nine
// classes other than shirts 1.3-1.4 (beyond the tolerance).
const loopRetrainConfig = `{"replay_items": 1024}`

// TestRetrainLoopFashion is issue 5's end-to-end test: `vireo up`
// in-process (embedded JetStream, ingest, infer, retrain) with the bundled
// Fashion-MNIST classifier, a video source flowing the whole time, and
// real CPU fine-tuning:
//
//  1. the model's confusion matrix on the test split names the most
//     confused class pair; loopCorrections test images of the pair's
//     weaker class that the model gets wrong go in as corrections over
//     HTTP (the rest of the test split is never submitted: it measures
//     the change);
//  2. `vireo up` is stopped and started again on the same data dir before
//     the last correction: no correction and no version is lost;
//  3. the last correction reaches the count trigger: a candidate is
//     fine-tuned, passes the gate and serves; results name it;
//  4. on the untouched test images the corrected class's accuracy rises
//     and the other classes' does not drop beyond the gate's tolerance;
//  5. a rollback serves the old version again and results say so;
//  6. every frame of the video source has exactly one result (counted by
//     (source, seq) in the RESULTS stream) across the swap and the
//     rollback.
//
// The video is opencv-doc's vtest.avi played at loopFPS through the
// fashion model itself: decoded by pkg/video, converted to gray at the
// model's 28x28 and published as Arrow frame batches on
// <p>.frames.fashion, as the frames service publishes a source's frames
// (which only feeds 3-channel models). Figures go to the log and to
// retrain_loop.json in t.ArtifactDir() (go test -artifacts -outputdir DIR
// keeps it).
func TestRetrainLoopFashion(t *testing.T) {
	if testing.Short() || os.Getenv("VIREO_TEST_LONG") == "" {
		t.Skip("fine-tunes the bundled fashion model on CPU with the whole stack running (about a minute, more when the dataset must be prepared): runs under make test-long or with VIREO_TEST_LONG=1")
	}
	vtest := filepath.Join(opencvData, "vtest.avi")
	if _, err := os.Stat(vtest); err != nil {
		t.Skipf("opencv-doc not installed (%v): run make deps", err)
	}
	bundled := filepath.Join("..", "..", "models", "fashion")
	if _, err := os.Stat(filepath.Join(bundled, "model.onnx")); err != nil {
		t.Skipf("bundled model models/fashion missing (%v): run make models", err)
	}
	dataRootDir, split := fashionData(t)
	log := newLoopLog(t)
	defer log.write(t) // also the figures of a failed run

	// The bundled model, alone, in a models folder of its own.
	models := t.TempDir()
	copyDir(t, bundled, filepath.Join(models, "fashion"))
	dataDir := t.TempDir()
	natsPort, httpPort := freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	api := "http://" + addr + "/v1/models/fashion"
	rcfgPath := filepath.Join(t.TempDir(), "retrain.json")
	if err := os.WriteFile(rcfgPath, []byte(loopRetrainConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	log.set("retrain_config", json.RawMessage(loopRetrainConfig))
	upArgs := []string{"up", "--data-dir", dataDir, "--nats-port", fmt.Sprint(natsPort), "--addr", addr,
		"--models", models, "--threads", "2", "--data-root", dataRootDir, "--retrain-config", rcfgPath,
		"--retrain-after", fmt.Sprint(loopCorrections), "--log-format", "json"}
	up := startUp(t, 1, upArgs, addr)
	defer func() { up.stop(t) }()

	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	store, err := modelstore.Open(ctx, js, modelstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend.Open(backend.Config{Name: "cpu", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()

	// 1. The serving version's confusion matrix on the whole test split.
	oldBytes, oldMan, err := store.Get(ctx, "fashion", "v0001")
	if err != nil {
		t.Fatal(err)
	}
	labels := oldMan.Labels
	all := make([]int, split.Valid.Len())
	for i := range all {
		all[i] = i
	}
	truth := make([]int, len(all))
	for i := range all {
		it, err := split.Valid.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		truth[i] = it.Label
	}
	t0 := time.Now()
	before := predictItems(t, ctx, be, oldBytes, oldMan, split.Valid, all)
	evalTook := time.Since(t0)
	conf := make([][]int, len(labels))
	for i := range conf {
		conf[i] = make([]int, len(labels))
	}
	for i, p := range before {
		conf[truth[i]][p]++
	}
	weak, partner := mostConfused(conf)
	log.set("model", "fashion")
	log.set("serving_accuracy_test_split", accuracy(truth, before, all, func(int) bool { return true }))
	log.set("confusion", conf)
	log.set("labels", labels)
	log.set("pair", []string{labels[weak], labels[partner]})
	log.set("corrected_class", labels[weak])
	t.Logf("serving v0001 on the %d test images in %v: accuracy %.4f; most confused pair %s/%s (%d %s taken for %s, %d the other way)",
		len(all), evalTook.Round(time.Millisecond), accuracy(truth, before, all, func(int) bool { return true }),
		labels[weak], labels[partner], conf[weak][partner], labels[weak], labels[partner], conf[partner][weak])

	// The corrections: a seeded sample of the weak class's images the model
	// takes for its partner; every other test image stays untouched.
	var wrong []int
	for i := range all {
		if truth[i] == weak && before[i] == partner {
			wrong = append(wrong, i)
		}
	}
	if len(wrong) < loopCorrections+10 {
		t.Fatalf("only %d %s images taken for %s (want at least %d: %d to submit and some left untouched)",
			len(wrong), labels[weak], labels[partner], loopCorrections+10, loopCorrections)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	rng.Shuffle(len(wrong), func(i, j int) { wrong[i], wrong[j] = wrong[j], wrong[i] })
	submit := slices.Clone(wrong[:loopCorrections])
	submitted := map[int]bool{}
	for _, i := range submit {
		submitted[i] = true
	}
	var untouched []int
	for i := range all {
		if !submitted[i] {
			untouched = append(untouched, i)
		}
	}

	// The video source, flowing from here to the end.
	cam := newCamera(t, js, vtest)
	camDone := make(chan error, 1)
	go func() { camDone <- cam.run(ctx) }()
	var camErr error
	var stopCam sync.Once
	stopCamera := func() error {
		stopCam.Do(func() {
			cam.stop()
			camErr = <-camDone
		})
		return camErr
	}
	defer stopCamera()
	live := newLiveResults(t, nc, "vireo.results.fashion."+loopSource)
	if _, err := live.waitVersion(ctx, "v0001", time.Time{}, time.Minute); err != nil {
		t.Fatal(err)
	}

	// 2. All but the last correction, then a restart of the whole stack.
	for _, i := range submit[:loopCorrections-1] {
		postCorrection(t, api, split.Valid, i, labels)
	}
	// The retrain service indexes each one as its consumer gets it.
	st := waitStatus(t, api, 30*time.Second, func(st retrain.Status) bool { return st.Corrections >= loopCorrections-1 })
	if st.Corrections != loopCorrections-1 || st.Pending != loopCorrections-1 || st.State != "idle" {
		t.Fatalf("before the restart: status %+v, want %d corrections pending and idle", st, loopCorrections-1)
	}
	cam.pause()
	if err := waitResults(ctx, js, cam.last(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	tStop := time.Now()
	up.stop(t)
	up = startUp(t, 2, upArgs, addr)
	restart := time.Since(tStop)
	cam.resume()
	st = retrainStatus(t, api)
	if st.Corrections != loopCorrections-1 || st.Pending != loopCorrections-1 {
		t.Fatalf("after the restart: status %+v, want the %d corrections kept and pending", st, loopCorrections-1)
	}
	vs := versions(t, api)
	if len(vs) != 1 || vs[0].Version != "v0001" || !vs[0].Serving {
		t.Fatalf("after the restart: versions %+v, want v0001 serving", vs)
	}
	log.set("restart", map[string]any{"took_s": restart.Seconds(), "corrections_kept": st.Corrections, "versions_kept": len(vs)})
	t.Logf("restart took %v: %d corrections and %d version kept", restart.Round(time.Millisecond), st.Corrections, len(vs))

	// 3. The last correction reaches the trigger.
	postCorrection(t, api, split.Valid, submit[loopCorrections-1], labels)
	tLast := time.Now()
	rec := waitRun(t, ctx, api, 15*time.Minute)
	gate := map[string]any{"outcome": rec.Outcome, "reason": rec.Reason, "pairs": rec.Pairs, "significance": rec.Significance,
		"tolerance": rec.Tolerance, "before": rec.Before, "after": rec.After}
	if rec.Pairs != nil {
		gate["p"] = rec.Pairs.P()
	}
	log.set("gate", gate)
	log.set("retrain_run_s", rec.Finished.Sub(rec.Started).Seconds())
	t.Logf("retrain (%s) from %s: %d corrections trained on, %d held out, %d replay; took %v; %s",
		rec.Trigger, rec.Parent, rec.Corrections, rec.Holdout, rec.Replay, rec.Finished.Sub(rec.Started).Round(time.Millisecond), rec.Reason)
	if rec.Corrections+rec.Holdout != loopCorrections || rec.Skipped != 0 {
		t.Fatalf("the run used %d+%d corrections (%d skipped), want all %d", rec.Corrections, rec.Holdout, rec.Skipped, loopCorrections)
	}
	if rec.Candidate == "" {
		t.Fatalf("retrain %s without a candidate: %s", rec.Outcome, rec.Reason)
	}
	newV := rec.Candidate

	// 4. Accuracy on the untouched test images, before and after (measured
	// for a refused candidate too: it is stored).
	newBytes, newMan, err := store.Get(ctx, "fashion", newV)
	if err != nil {
		t.Fatal(err)
	}
	if newMan.ParentVersion != "v0001" || newMan.CorrectionDigest != rec.CorrectionDigest {
		t.Errorf("manifest of %s: parent %q digest %q, want v0001 and %q", newV, newMan.ParentVersion, newMan.CorrectionDigest, rec.CorrectionDigest)
	}
	after := make([]int, len(all))
	for k, p := range predictItems(t, ctx, be, newBytes, newMan, split.Valid, untouched) {
		after[untouched[k]] = p
	}
	isWeak := func(i int) bool { return truth[i] == weak }
	isPartner := func(i int) bool { return truth[i] == partner }
	isOther := func(i int) bool { return truth[i] != weak }
	isRest := func(i int) bool { return truth[i] != weak && truth[i] != partner }
	acc := map[string]any{}
	type delta struct {
		Items  int     `json:"items"`
		Before float64 `json:"before"`
		After  float64 `json:"after"`
		Change float64 `json:"change"`
	}
	measure := func(name string, keep func(int) bool) delta {
		d := delta{Before: accuracy(truth, before, untouched, keep), After: accuracy(truth, after, untouched, keep)}
		for _, i := range untouched {
			if keep(i) {
				d.Items++
			}
		}
		d.Change = d.After - d.Before
		acc[name] = d
		t.Logf("untouched %-28s %5d images: accuracy %.4f -> %.4f (%+.4f)", name, d.Items, d.Before, d.After, d.Change)
		return d
	}
	corrected := measure("corrected class "+labels[weak], isWeak)
	others := measure("other classes", isOther)
	partnerD := measure("partner "+labels[partner], isPartner)
	rest := measure("other classes but the partner", isRest)
	overall := measure("all", func(int) bool { return true })
	perClass := map[string]delta{}
	for c, l := range labels {
		d := delta{Before: accuracy(truth, before, untouched, func(i int) bool { return truth[i] == c }),
			After: accuracy(truth, after, untouched, func(i int) bool { return truth[i] == c })}
		d.Change = d.After - d.Before
		perClass[l] = d
	}
	acc["per_class"] = perClass
	log.set("accuracy_untouched", acc)
	if !(corrected.After > corrected.Before) {
		t.Errorf("corrected class %s: accuracy %.4f -> %.4f on %d untouched images, want a rise", labels[weak], corrected.Before, corrected.After, corrected.Items)
	}
	// Moving the boundary of a confused pair towards the corrected class
	// costs its partner (t-shirts that look like the corrected shirts);
	// distillation on the replay items (the retrain default) keeps that
	// price within the tolerance: the nine other classes pooled, the eight
	// uninvolved ones, and the whole test split must not drop beyond the
	// gate's tolerance.
	if drop := others.Before - others.After; drop > rec.Tolerance {
		t.Errorf("classes other than %s (%s included): accuracy %.4f -> %.4f, a drop of %.4f beyond the tolerance %.4f", labels[weak], labels[partner], others.Before, others.After, drop, rec.Tolerance)
	}
	if drop := rest.Before - rest.After; drop > rec.Tolerance {
		t.Errorf("classes other than %s and %s: accuracy %.4f -> %.4f, a drop of %.4f beyond the tolerance %.4f", labels[weak], labels[partner], rest.Before, rest.After, drop, rec.Tolerance)
	}
	if drop := overall.Before - overall.After; drop > rec.Tolerance {
		t.Errorf("all classes: accuracy %.4f -> %.4f, a drop of %.4f beyond the tolerance %.4f", overall.Before, overall.After, drop, rec.Tolerance)
	}
	t.Logf("the price of the correction: %s %+.4f, the nine other classes pooled %+.4f (tolerance %.4f)", labels[partner], partnerD.Change, others.Change, rec.Tolerance)
	if rec.Outcome != retrain.OutcomePromoted {
		t.Fatalf("retrain %s: %s", rec.Outcome, rec.Reason)
	}
	firstNew, err := live.waitVersion(ctx, newV, tLast, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ptr, err := store.Serving(ctx, "fashion")
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Version != newV || ptr.Previous != "v0001" {
		t.Fatalf("pointer %+v: want %s serving after v0001", ptr, newV)
	}

	// 5. Rollback.
	tRB := time.Now()
	var p modelstore.Pointer
	if code, body := postJSON(t, api+"/rollback", `{}`, &p); code != 200 || p.Version != "v0001" {
		t.Fatalf("rollback: %d %s: want 200 and v0001 serving", code, body)
	}
	firstRB, err := live.waitVersion(ctx, "v0001", tRB, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // a few more frames on the rolled-back version

	// 6. Every frame once, versions in order.
	if err := stopCamera(); err != nil {
		t.Fatal(err)
	}
	lastSeq := cam.last()
	if err := waitResults(ctx, js, lastSeq, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	rs, err := readResults(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	sw := analyseStream(t, rs, lastSeq, newV, tLast, tRB)
	vs = versions(t, api)
	if len(vs) != 2 || vs[1].Version != newV || vs[0].Serving != true || vs[1].Serving {
		t.Errorf("versions after the rollback %+v: want v0001 serving and %s kept", vs, newV)
	}

	fig := map[string]any{
		"corrections_submitted":                      loopCorrections,
		"corrections_trained":                        rec.Corrections,
		"corrections_held_out":                       rec.Holdout,
		"replay_items":                               rec.Replay,
		"replay_distilled":                           rec.Distilled,
		"gate":                                       map[string]any{"reason": rec.Reason, "pairs": rec.Pairs, "p": rec.Pairs.P(), "significance": rec.Significance, "tolerance": rec.Tolerance, "before": rec.Before, "after": rec.After},
		"new_version":                                newV,
		"retrain_run_s":                              rec.Finished.Sub(rec.Started).Seconds(),
		"last_correction_to_run_start_s":             rec.Started.Sub(tLast).Seconds(),
		"last_correction_to_promoted_s":              ptr.At.Sub(tLast).Seconds(),
		"last_correction_to_first_new_result_s":      sw.FirstNew.Sub(tLast).Seconds(),
		"last_correction_to_first_new_result_live_s": firstNew.Sub(tLast).Seconds(),
		"promoted_to_first_new_result_s":             sw.FirstNew.Sub(ptr.At).Seconds(),
		"rollback_to_first_old_result_s":             sw.FirstRolledBack.Sub(tRB).Seconds(),
		"rollback_to_first_old_result_live_s":        firstRB.Sub(tRB).Seconds(),
		"stream":                                     sw,
	}
	log.set("figures", fig)
	t.Logf("last correction -> run start %.1f s, -> promoted %.1f s, -> first result from %s %.1f s (run %.1f s)",
		rec.Started.Sub(tLast).Seconds(), ptr.At.Sub(tLast).Seconds(), newV, sw.FirstNew.Sub(tLast).Seconds(), rec.Finished.Sub(rec.Started).Seconds())
	t.Logf("stream %s: %d frames, %d results, %d missing, %d duplicated; swap pause %.0f ms, rollback pause %.0f ms (median gap %.0f ms)",
		loopSource, sw.Frames, sw.Results, sw.Missing, sw.Duplicated, sw.SwapPauseMS, sw.RollbackPauseMS, sw.MedianGapMS)
}

// fashionData finds the prepared fashion dataset the way cmd/vireo does
// (VIREO_DATA, else the repository's data/), preparing it into a temporary
// folder from the Debian package when it is not there.
func fashionData(t *testing.T) (string, data.Split) {
	t.Helper()
	root := os.Getenv("VIREO_DATA")
	if root == "" {
		root = filepath.Join("..", "..", defaultDataRoot)
	}
	dir, err := data.Locate(root, "fashion")
	if err != nil {
		if _, serr := os.Stat(filepath.Join(data.DefaultFashionDir, "t10k-images-idx3-ubyte.gz")); serr != nil {
			t.Skipf("no prepared fashion dataset (%v) and Debian package dataset-fashion-mnist not installed: run make deps, then make data", err)
		}
		root = t.TempDir()
		dir = filepath.Join(root, "fashion")
		if err := data.Prepare(context.Background(), "fashion", dir, 42, nil); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := data.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	return abs, sp
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// upRun is one in-process `vireo up`.
type upRun struct {
	n      int // which run (log file name)
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

func startUp(t *testing.T, n int, args []string, addr string) *upRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := &upRun{n: n, cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	go func() { u.done <- run(ctx, args, io.Discard, u.stderr) }()
	waitReady(t, "http://"+addr+"/readyz", u.done, u.stderr)
	return u
}

// stop ends the run (once) and fails the test if it did not end cleanly.
func (u *upRun) stop(t *testing.T) {
	t.Helper()
	if u.done == nil {
		return
	}
	u.cancel()
	select {
	case err := <-u.done:
		if err != nil {
			t.Errorf("vireo up returned %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Errorf("vireo up did not stop within 90 s")
	}
	u.done = nil
	path := filepath.Join(t.ArtifactDir(), fmt.Sprintf("vireo-up-%d.log", u.n))
	if err := os.WriteFile(path, []byte(u.stderr.String()), 0o644); err != nil {
		t.Error(err)
	}
}

// predictItems runs the version on ds's items idx through pkg/predict (the
// code infer serves with) and returns the predicted class indices.
func predictItems(t *testing.T, ctx context.Context, be kernels.Backend, onnxBytes []byte, man model.Manifest, ds data.Dataset, idx []int) []int {
	t.Helper()
	p, err := predict.Load(be, onnxBytes, man, predict.Options{MaxBatch: 64, NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out := make([]int, 0, len(idx))
	frames := make([]schema.Frame, 0, 64)
	flush := func() {
		if len(frames) == 0 {
			return
		}
		rs, err := p.Run(ctx, frames)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			out = append(out, slices.Index(man.Labels, r.Labels[0]))
		}
		frames = frames[:0]
	}
	for _, i := range idx {
		it, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, schema.Frame{Source: "eval", Seq: uint64(i + 1), Captured: time.Now(), OrigWidth: it.Width, OrigHeight: it.Height,
			Width: it.Width, Height: it.Height, Channels: it.Channels, Pixels: it.Pixels})
		if len(frames) == cap(frames) {
			flush()
		}
	}
	flush()
	return out
}

// mostConfused returns the pair (weak, partner) with the most confusions
// either way, weak being the one taken for the other more often.
func mostConfused(conf [][]int) (int, int) {
	bw, bp, best := 0, 1, -1
	for i := range conf {
		for j := i + 1; j < len(conf); j++ {
			if n := conf[i][j] + conf[j][i]; n > best {
				best, bw, bp = n, i, j
			}
		}
	}
	if conf[bp][bw] > conf[bw][bp] {
		bw, bp = bp, bw
	}
	return bw, bp
}

func accuracy(truth, pred, idx []int, keep func(int) bool) float64 {
	n, ok := 0, 0
	for _, i := range idx {
		if !keep(i) {
			continue
		}
		n++
		if pred[i] == truth[i] {
			ok++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(ok) / float64(n)
}

// postCorrection submits test image i with its true label, as a user
// correcting the serving model would.
func postCorrection(t *testing.T, api string, ds data.Dataset, i int, labels []string) {
	t.Helper()
	it, err := ds.Get(i)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, it.Width, it.Height))
	copy(img.Pix, it.Pixels)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	// A fixed time per image: the retrain service holds out a correction
	// by a hash of its message, so the held-out set is the same every run.
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	c := schema.Correction{Task: schema.TaskClassification, ModelVersion: "v0001", Image: buf.Bytes(),
		Answer: schema.Answer{Label: labels[it.Label]}, Labeler: "test:retrain-loop", TS: ts}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
	}
	if code, body := postJSON(t, api+"/corrections", string(b), &reply); code != http.StatusCreated || reply.Duplicate {
		t.Fatalf("correction of test image %d: %d %s: want 201, not a duplicate", i, code, body)
	}
}

func postJSON(t *testing.T, url, body string, out any) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %s: %v", url, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %s: %v", url, b, err)
	}
}

func retrainStatus(t *testing.T, api string) retrain.Status {
	t.Helper()
	var st retrain.Status
	getJSON(t, api+"/retrain", &st)
	return st
}

// waitStatus polls GET /retrain until ok or limit, returning the last status.
func waitStatus(t *testing.T, api string, limit time.Duration, ok func(retrain.Status) bool) retrain.Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := retrainStatus(t, api)
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func versions(t *testing.T, api string) []modelstore.Version {
	t.Helper()
	var vs []modelstore.Version
	getJSON(t, api+"/versions", &vs)
	return vs
}

// waitRun polls GET /retrain until a run has finished and logs its stages.
func waitRun(t *testing.T, ctx context.Context, api string, limit time.Duration) retrain.Record {
	t.Helper()
	deadline := time.Now().Add(limit)
	stage := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st := retrainStatus(t, api)
		if st.Last != nil {
			return *st.Last
		}
		if s := fmt.Sprintf("%s %s %d/%d", st.State, st.Stage, st.Epoch, st.Epochs); s != stage {
			stage = s
			t.Logf("retrain: %s", s)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no retrain run finished within %v", limit)
	return retrain.Record{}
}

// camera plays vtest.avi at loopFPS as a gray 28x28 source for the fashion
// model, in a loop, with seqs 1, 2, 3, ... Each frame is published to
// FRAMES (Nats-Msg-Id source/seq) until the server acks it, so a frame is
// never skipped; pause stops it between frames.
type camera struct {
	js      jetstream.JetStream
	frames  [][]byte
	ow, oh  int
	lastSeq atomic.Uint64
	mu      sync.Mutex
	paused  bool
	quit    chan struct{}
	once    sync.Once
}

func newCamera(t *testing.T, js jetstream.JetStream, path string) *camera {
	t.Helper()
	src, err := video.OpenFile(context.Background(), path, video.Config{Width: 28, Height: 28})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c := &camera{js: js, quit: make(chan struct{})}
	for {
		f, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		g := make([]byte, f.Width*f.Height)
		for i := range g { // BGR to luma (ITU-R BT.601)
			b, gr, r := int(f.Pixels[3*i]), int(f.Pixels[3*i+1]), int(f.Pixels[3*i+2])
			g[i] = byte((299*r + 587*gr + 114*b + 500) / 1000)
		}
		c.frames = append(c.frames, g)
		c.ow, c.oh = f.OrigWidth, f.OrigHeight
	}
	if len(c.frames) == 0 {
		t.Fatal("vtest.avi: no frames")
	}
	return c
}

func (c *camera) run(ctx context.Context) error {
	tick := time.NewTicker(time.Second / loopFPS)
	defer tick.Stop()
	subj := "vireo.frames.fashion"
	for seq := uint64(1); ; {
		select {
		case <-c.quit:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		c.mu.Lock()
		paused := c.paused
		c.mu.Unlock()
		if paused {
			continue
		}
		b, err := schema.EncodeFrames(memory.DefaultAllocator, "fashion", []schema.Frame{{
			Source: loopSource, Seq: seq, Captured: time.Now(), OrigWidth: c.ow, OrigHeight: c.oh,
			Width: 28, Height: 28, Channels: 1, Pixels: c.frames[int(seq-1)%len(c.frames)],
		}})
		if err != nil {
			return err
		}
		id, _ := schema.MsgID(loopSource, seq)
		msg := nats.NewMsg(subj)
		msg.Data = b
		msg.Header.Set(jetstream.MsgIDHeader, id)
		msg.Header.Set(schema.HeaderSchemaVersion, fmt.Sprint(schema.Version))
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := c.js.PublishMsg(pctx, msg)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.lastSeq.Store(seq)
		seq++
	}
}

func (c *camera) last() uint64 { return c.lastSeq.Load() }

func (c *camera) pause() {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
	time.Sleep(2 * time.Second / loopFPS) // let a frame in flight finish
}

func (c *camera) resume() {
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
}

func (c *camera) stop() { c.once.Do(func() { close(c.quit) }) }

// liveResults watches a results subject and remembers when each version
// was first seen.
type liveResults struct {
	mu    sync.Mutex
	first map[string][]time.Time // version -> arrival times
	sub   *nats.Subscription
	wake  chan struct{}
}

func newLiveResults(t *testing.T, nc *nats.Conn, subject string) *liveResults {
	t.Helper()
	l := &liveResults{first: map[string][]time.Time{}, wake: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var r schema.Result
		if json.Unmarshal(m.Data, &r) != nil {
			return
		}
		now := time.Now()
		l.mu.Lock()
		l.first[r.ModelVersion] = append(l.first[r.ModelVersion], now)
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil { // in place before anything is published
		t.Fatal(err)
	}
	l.sub = sub
	return l
}

// waitVersion returns when the first result naming version after since
// arrived.
func (l *liveResults) waitVersion(ctx context.Context, version string, since time.Time, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		l.mu.Lock()
		for _, at := range l.first[version] {
			if at.After(since) {
				l.mu.Unlock()
				return at, nil
			}
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-deadline:
			return time.Time{}, fmt.Errorf("no result from %s within %v", version, limit)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// storedResult is a result of the camera's source as the RESULTS stream
// stored it.
type storedResult struct {
	Seq     uint64
	Version string
	At      time.Time
}

// readResults reads every stored result of the camera's source.
func readResults(ctx context.Context, js jetstream.JetStream) ([]storedResult, error) {
	st, err := js.Stream(ctx, schema.StreamResults) // default prefix
	if err != nil {
		return nil, err
	}
	subj := "vireo.results.fashion." + loopSource
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, err
	}
	n := info.State.Subjects[subj]
	if n == 0 {
		return nil, nil
	}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, err
	}
	var out []storedResult
	for uint64(len(out)) < n {
		m, err := oc.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("results %d of %d: %w", len(out), n, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		var r schema.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			return nil, err
		}
		out = append(out, storedResult{Seq: r.Seq, Version: r.ModelVersion, At: md.Timestamp})
	}
	return out, nil
}

// waitResults waits until the camera's seqs 1..last all have a stored
// result.
func waitResults(ctx context.Context, js jetstream.JetStream, last uint64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		rs, err := readResults(ctx, js)
		if err == nil {
			seen := map[uint64]bool{}
			for _, r := range rs {
				seen[r.Seq] = true
			}
			missing := 0
			for s := uint64(1); s <= last; s++ {
				if !seen[s] {
					missing++
				}
			}
			if missing == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("after %v: %d of the %d frames have no result", limit, missing, last)
			}
		} else if time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// streamFigures are the camera stream's counts and the pauses at the
// version switches.
type streamFigures struct {
	Frames          uint64         `json:"frames"`
	Results         int            `json:"results"`
	Missing         int            `json:"missing"`
	Duplicated      int            `json:"duplicated"`
	PerVersion      map[string]int `json:"per_version"`
	SwapSeq         uint64         `json:"swap_seq"`
	RollbackSeq     uint64         `json:"rollback_seq"`
	SwapPauseMS     float64        `json:"swap_pause_ms"`
	RollbackPauseMS float64        `json:"rollback_pause_ms"`
	MedianGapMS     float64        `json:"median_gap_ms"`
	FirstNew        time.Time      `json:"first_new_result"`
	FirstRolledBack time.Time      `json:"first_rolled_back_result"`
}

// analyseStream checks one result per frame and versions in order: old,
// then the new version from one seq on, then the old one again after the
// rollback; it measures the gap between consecutive results at each
// switch.
func analyseStream(t *testing.T, rs []storedResult, last uint64, newV string, tLast, tRB time.Time) streamFigures {
	t.Helper()
	f := streamFigures{Frames: last, Results: len(rs), PerVersion: map[string]int{}}
	bySeq := map[uint64]storedResult{}
	for _, r := range rs {
		if _, dup := bySeq[r.Seq]; dup {
			f.Duplicated++
			continue
		}
		bySeq[r.Seq] = r
		f.PerVersion[r.Version]++
	}
	for s := uint64(1); s <= last; s++ {
		if _, ok := bySeq[s]; !ok {
			f.Missing++
		}
	}
	if extra := len(bySeq) - int(last-uint64(f.Missing)); extra != 0 {
		t.Errorf("%d results for seqs the camera never published", extra)
	}
	if f.Missing != 0 || f.Duplicated != 0 {
		t.Errorf("stream %s: %d frames, %d missing, %d duplicated results", loopSource, last, f.Missing, f.Duplicated)
	}
	// Phases: v0001 up to SwapSeq-1, newV from SwapSeq to RollbackSeq-1,
	// v0001 from RollbackSeq on.
	phase := 0
	var gaps []float64
	var prev storedResult
	for s := uint64(1); s <= last; s++ {
		r, ok := bySeq[s]
		if !ok {
			continue
		}
		if prev.Seq != 0 && prev.Seq == s-1 {
			gaps = append(gaps, float64(r.At.Sub(prev.At).Microseconds())/1000)
		}
		switch {
		case phase == 0 && r.Version == newV:
			phase, f.SwapSeq, f.FirstNew = 1, s, r.At
			f.SwapPauseMS = float64(r.At.Sub(prev.At).Microseconds()) / 1000
			if r.At.Before(tLast) {
				t.Errorf("seq %d: a result from %s at %v, before the last correction (%v)", s, newV, r.At, tLast)
			}
		case phase == 1 && r.Version == "v0001":
			phase, f.RollbackSeq, f.FirstRolledBack = 2, s, r.At
			f.RollbackPauseMS = float64(r.At.Sub(prev.At).Microseconds()) / 1000
			if r.At.Before(tRB) {
				t.Errorf("seq %d: a result from v0001 at %v, before the rollback (%v)", s, r.At, tRB)
			}
		case (phase == 0 || phase == 2) && r.Version != "v0001", phase == 1 && r.Version != newV:
			t.Errorf("seq %d: result from %s in phase %d (want v0001, then %s, then v0001)", s, r.Version, phase, newV)
		}
		prev = r
	}
	if phase != 2 {
		t.Errorf("stream %s: versions never went v0001 -> %s -> v0001 (phase %d; per version %v)", loopSource, newV, phase, f.PerVersion)
	}
	sort.Float64s(gaps)
	if len(gaps) > 0 {
		f.MedianGapMS = gaps[len(gaps)/2]
	}
	return f
}

// loopLog collects the figures for retrain_loop.json.
type loopLog struct {
	mu sync.Mutex
	m  map[string]any
}

func newLoopLog(t *testing.T) *loopLog {
	return &loopLog{m: map[string]any{"test": t.Name(), "when": time.Now().UTC()}}
}

func (l *loopLog) set(k string, v any) {
	l.mu.Lock()
	l.m[k] = v
	l.mu.Unlock()
}

func (l *loopLog) write(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	b, err := json.MarshalIndent(l.m, "", "  ")
	l.mu.Unlock()
	if err != nil {
		t.Error(err)
		return
	}
	path := filepath.Join(t.ArtifactDir(), "retrain_loop.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("figures in %s", path)
}

// TestUpRetrainConfig: a bad --retrain-config is a usage error before
// anything starts.
func TestUpRetrainConfig(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown.json": `{"learning_rate": 0.1}`,
		"invalid.json": `{"lr": -1}`,
		"notjson.json": `lr=0.1`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		err := run(context.Background(), []string{"up", "--data-dir", filepath.Join(dir, "data"), "--retrain-config", path}, io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("%s: got %v, want a usage error", name, err)
		}
	}
	err := run(context.Background(), []string{"up", "--data-dir", filepath.Join(dir, "data"), "--retrain-config", filepath.Join(dir, "missing.json")}, io.Discard, io.Discard)
	var u usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: got %v, want a usage error naming it", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("the data dir was created (%v): the settings must be checked first", err)
	}
}
