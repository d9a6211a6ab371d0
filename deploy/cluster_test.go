package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"vireo/pkg/arch"
	"vireo/pkg/model/modeltest"
	"vireo/pkg/schema"
)

const opencvData = "/usr/share/doc/opencv-doc/examples/data"

// TestClusterProcesses plays compose.yaml's topology with real processes:
// three nats-server processes (built from the module pinned in go.mod) as
// a JetStream cluster configured from deploy/nats.conf, `vireo models
// push`, `vireo ingest`, `vireo frames` and two `vireo infer` replicas,
// all with VIREO_REPLICAS=3. It registers vtest.avi with every-5th-frame
// sampling (159 frames), kills one infer replica with SIGKILL while both
// are working, and checks that the RESULTS stream holds exactly one result
// per frame: the killed replica's unacked frame batches are redelivered to
// the other after AckWait, and a result it had already published before
// dying is dropped by the stream's Nats-Msg-Id duplicate window.
//
// Core NATS subscribers of vireo.results.> are not deduplicated: they may
// see such a redelivered frame's result twice (same source, seq and
// model_version); the test counts those and a consumer that needs
// exactly-once reads the RESULTS stream or keeps the last (source, seq).
func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nats-server and vireo and runs 3+5 processes on vtest.avi (~1-2 min, 30 s of it the infer AckWait after a kill -9)")
	}
	video := filepath.Join(opencvData, "vtest.avi")
	if _, err := os.Stat(video); err != nil {
		t.Skipf("opencv-doc not installed (%v): run make deps", err)
	}
	natsBin := goBuild(t, "nats-server", "github.com/nats-io/nats-server/v2")
	vireoBin := goBuild(t, "vireo", "../cmd/vireo")

	// Three NATS nodes from nats.conf, on free local ports.
	const nodes = 3
	var client, monitor, route [nodes]int
	ports := freePorts(t, 3*nodes+4)
	for i := range nodes {
		client[i], monitor[i], route[i] = ports[3*i], ports[3*i+1], ports[3*i+2]
	}
	svcPorts := ports[3*nodes:]
	procs := &procSet{t: t}
	t.Cleanup(procs.stopAll)
	var urls []string
	for i := range nodes {
		name := fmt.Sprintf("nats-%d", i+1)
		conf := natsConf(t, name, client[i], monitor[i], route[i], route[:], t.TempDir())
		path := filepath.Join(t.TempDir(), name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		procs.start(name, natsBin, []string{"NATS_NAME=" + name}, "-c", path)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	for i := range nodes {
		// /healthz without js-enabled-only also waits for the JetStream
		// meta group (a leader, this node current).
		procs.waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/healthz", monitor[i]), 60*time.Second)
	}
	natsURL := strings.Join(urls, ",")
	env := []string{"VIREO_NATS_URL=" + natsURL, "VIREO_REPLICAS=3", "VIREO_LOG_FORMAT=json", "VIREO_THREADS=1"}

	// The model store (push provisions streams and buckets with 3 replicas).
	models := t.TempDir()
	modeltest.WriteArch(t, models, "people", "resnet18-unet@0.125", arch.TaskSegment,
		arch.Config{Classes: 3, SmallStem: true, Size: 64, Seed: 1}, []string{"background", "person", "Void"})
	push := exec.Command(vireoBin, "models", "push", "--if-missing", models)
	push.Env = append(os.Environ(), env...)
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("vireo models push: %v\n%s", err, out)
	}

	// The services, as compose starts them.
	ingestAddr := fmt.Sprintf("127.0.0.1:%d", svcPorts[0])
	framesAddr := fmt.Sprintf("127.0.0.1:%d", svcPorts[1])
	inferAddr := []string{fmt.Sprintf("127.0.0.1:%d", svcPorts[2]), fmt.Sprintf("127.0.0.1:%d", svcPorts[3])}
	procs.start("ingest", vireoBin, env, "ingest", "--addr", ingestAddr)
	procs.start("frames", vireoBin, env, "frames", "--metrics-addr", framesAddr)
	infers := []*proc{
		procs.start("infer-1", vireoBin, env, "infer", "--metrics-addr", inferAddr[0]),
		procs.start("infer-2", vireoBin, env, "infer", "--metrics-addr", inferAddr[1]),
	}
	for _, a := range append([]string{ingestAddr, framesAddr}, inferAddr...) {
		procs.waitHTTP("http://"+a+"/readyz", 2*time.Minute)
	}

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := schema.NewSubjects(schema.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	resultSubj, _ := subj.Results("people", "vtest")
	eventSubj, _ := subj.Events("vtest")
	var seen subscriberCount
	sub, err := nc.Subscribe(resultSubj, seen.add)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	eos := make(chan *nats.Msg, 4)
	esub, err := nc.ChanSubscribe(eventSubj, eos)
	if err != nil {
		t.Fatal(err)
	}
	defer esub.Unsubscribe()
	// The services publish on their own connections: the subscriptions
	// must be in place at the server before the source is registered.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	reg := fmt.Sprintf(`{"schema_version":1,"id":"vtest","model":"people","every_n":5,"url":"file://%s"}`, video)
	resp, err := http.Post("http://"+ingestAddr+"/v1/sources", "application/json", strings.NewReader(reg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("register vtest: %s: %s", resp.Status, body)
	}

	// Kill -9 one replica while both are working and frames remain.
	const want = 159
	var victim *proc
	var before [2]float64
	deadline := time.Now().Add(3 * time.Minute)
	for victim == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no moment with both infer replicas working (frames %v, results seen %d)", before, seen.total())
		}
		procs.checkAlive()
		for i, a := range inferAddr {
			before[i] = metricSum(t, "http://"+a+"/metrics", "vireo_infer_frames_total")
		}
		if before[0]+before[1] >= want-16 {
			t.Fatalf("the stream ended before both replicas worked (frames per replica %v): nothing to kill mid-stream", before)
		}
		if before[0] > 0 && before[1] > 0 {
			// The one that has done more holds the larger share of
			// pulled, unacked batches.
			victim = infers[0]
			if before[1] > before[0] {
				victim = infers[1]
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ci, err := js.Consumer(context.Background(), subj.StreamName(schema.StreamFrames), "infer-people")
	if err != nil {
		t.Fatal(err)
	}
	info, err := ci.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	victim.kill()
	t.Logf("%s killed %s: frames done per replica %v, results seen %d, consumer ack pending %d", time.Now().Format("15:04:05.000"), victim.name, before, seen.total(), info.NumAckPending)

	// Wait for frames to end the source and infer to ack every batch.
	select {
	case m := <-eos:
		var e schema.EndOfStream
		if err := json.Unmarshal(m.Data, &e); err != nil || e.Frames != want {
			t.Fatalf("end of stream %s (err %v): want %d frames", m.Data, err, want)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("no end-of-stream event for vtest within 2 min")
	}
	for {
		procs.checkAlive()
		info, err = ci.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("infer consumer not done: pending %d, ack pending %d, redelivered %d; results seen %d",
				info.NumPending, info.NumAckPending, info.NumRedelivered, seen.total())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The RESULTS stream: exactly one result per sampled frame.
	stream, err := js.Stream(context.Background(), subj.StreamName(schema.StreamResults))
	if err != nil {
		t.Fatal(err)
	}
	stored := readResults(t, stream, resultSubj)
	if len(stored) != want {
		t.Errorf("RESULTS holds %d results for vtest, want %d", len(stored), want)
	}
	distinct := map[uint64]int{}
	for _, r := range stored {
		distinct[r.Seq]++
		if r.ModelVersion != "v0001" {
			t.Errorf("result seq %d: model_version %q, want v0001", r.Seq, r.ModelVersion)
		}
	}
	for seq, n := range distinct {
		if n != 1 {
			t.Errorf("seq %d stored %d times, want once", seq, n)
		}
	}
	if len(distinct) != want {
		t.Errorf("%d distinct seqs stored, want %d", len(distinct), want)
	}

	// The kill left work behind that the other replica did.
	streamInfo, err := js.Stream(context.Background(), subj.StreamName(schema.StreamFrames))
	if err != nil {
		t.Fatal(err)
	}
	sinfo, err := streamInfo.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	redelivered := int(info.Delivered.Consumer) - int(sinfo.State.Msgs)
	survivor := infers[0]
	surviving := inferAddr[0]
	if victim == infers[0] {
		survivor, surviving = infers[1], inferAddr[1]
	}
	after := metricSum(t, "http://"+surviving+"/metrics", "vireo_infer_frames_total")
	t.Logf("%s frame batches %d, deliveries %d (%d redelivered); %s did %v frames after the kill; subscriber saw %d results, %d distinct",
		time.Now().Format("15:04:05.000"), sinfo.State.Msgs, info.Delivered.Consumer, redelivered, survivor.name, after, seen.total(), seen.distinct())
	if redelivered <= 0 {
		t.Errorf("no frame batch was redelivered after the kill (deliveries %d, batches %d): the killed replica held nothing unacked, so the kill tested nothing",
			info.Delivered.Consumer, sinfo.State.Msgs)
	}
	for _, p := range procs.procs[nodes:] {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
				t.Logf("%s: %s", p.name, line)
			}
		}
	}
	if seen.distinct() != want {
		t.Errorf("a core subscriber saw %d distinct seqs, want %d", seen.distinct(), want)
	}
}

// natsConf is deploy/nats.conf for one local node: the same settings
// (max_payload, sync_interval, store limits, cluster name, routes), with
// listen addresses, store dir and routes rewritten to local ports. Each
// rewrite must match, so a change to nats.conf that the test no longer
// follows fails here instead of silently testing something else.
func natsConf(t *testing.T, name string, client, monitor, route int, routes []int, storeDir string) string {
	t.Helper()
	b, err := os.ReadFile("nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	replace := func(old, new string) {
		if strings.Count(conf, old) != 1 {
			t.Fatalf("nats.conf: want exactly one %q to rewrite for the local cluster", old)
		}
		conf = strings.Replace(conf, old, new, 1)
	}
	replace("listen: 0.0.0.0:4222", fmt.Sprintf("listen: 127.0.0.1:%d", client))
	replace("http: 0.0.0.0:8222", fmt.Sprintf("http: 127.0.0.1:%d", monitor))
	replace("store_dir: /data", fmt.Sprintf("store_dir: %q", storeDir))
	replace("listen: 0.0.0.0:6222", fmt.Sprintf("listen: 127.0.0.1:%d", route))
	for i, p := range routes {
		replace(fmt.Sprintf("nats-route://nats-%d:6222", i+1), fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	if !strings.Contains(conf, "$NATS_NAME") {
		t.Fatalf("nats.conf: want server_name from $NATS_NAME")
	}
	_ = name // set through the NATS_NAME environment variable, as compose does
	return conf
}

// readResults reads every JSON result on subject from the RESULTS stream,
// one direct "next message on subject" get at a time (no consumer).
func readResults(t *testing.T, s jetstream.Stream, subject string) []schema.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []schema.Result
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("reading RESULTS at sequence %d after %d results: %v", seq, len(out), err)
		}
		var r schema.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("stored result %s: %v", m.Data, err)
		}
		out = append(out, r)
		seq = m.Sequence + 1
	}
}

// subscriberCount counts what a core NATS subscriber sees.
type subscriberCount struct {
	mu   sync.Mutex
	n    int
	seqs map[uint64]bool
}

func (s *subscriberCount) add(m *nats.Msg) {
	var r schema.Result
	if json.Unmarshal(m.Data, &r) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seqs == nil {
		s.seqs = map[uint64]bool{}
	}
	s.n++
	s.seqs[r.Seq] = true
}

func (s *subscriberCount) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *subscriberCount) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs)
}

// metricSum is the sum of every sample of a Prometheus metric at url.
func metricSum(t *testing.T, url, metric string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", url, line, err)
		}
		sum += v
	}
	return sum
}

// proc is one child process with its stderr kept for the failure log.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
	err    error
	killed bool
}

func (p *proc) kill() {
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// procSet owns the test's processes: it stops them all at cleanup
// (SIGTERM, then SIGKILL after 20 s) and logs their stderr when the test
// failed.
type procSet struct {
	t     *testing.T
	procs []*proc
}

func (s *procSet) start(name, bin string, env []string, args ...string) *proc {
	s.t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = &p.stderr
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p
}

// checkAlive fails the test when a process that was not killed exited.
func (s *procSet) checkAlive() {
	s.t.Helper()
	for _, p := range s.procs {
		select {
		case <-p.done:
			if !p.killed {
				s.t.Fatalf("%s exited early: %v", p.name, p.err)
			}
		default:
		}
	}
}

func (s *procSet) waitHTTP(url string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		s.checkAlive()
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s not ready within %v", url, within)
}

func (s *procSet) stopAll() {
	// Services first, NATS last, as compose does.
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			s.t.Errorf("%s did not stop within 20 s of SIGTERM; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if s.t.Failed() {
		for _, p := range s.procs {
			out := p.stderr.String()
			if len(out) > 16<<10 {
				out = "...\n" + out[len(out)-16<<10:]
			}
			s.t.Logf("--- %s (exit %v) ---\n%s", p.name, p.err, out)
		}
	}
}

// freePorts returns n distinct free local ports (all held open while
// picking, so none is handed out twice).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
