package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose parses ../compose.yaml the way `docker compose` does
// (interpolation, anchors and merge keys, validation against the schema).
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	details, err := loader.LoadConfigFiles(context.Background(), []string{filepath.Join(root, "compose.yaml")}, root)
	if err != nil {
		t.Fatal(err)
	}
	details.Environment = map[string]string{}
	p, err := loader.LoadWithContext(context.Background(), *details, func(o *loader.Options) {
		o.SetProjectName("vireo", true)
		o.Profiles = profiles
	})
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

var natsImage = regexp.MustCompile(`^nats:2\.(\d+)`)

func TestComposeNATSCluster(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("service %s missing", name)
		}
		m := natsImage.FindStringSubmatch(s.Image)
		if m == nil {
			t.Errorf("%s image %q: want the official nats image", name, s.Image)
		} else if minor, _ := strconv.Atoi(m[1]); minor < 10 {
			t.Errorf("%s image %q: want nats 2.10 or newer", name, s.Image)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		var conf, data bool
		for _, v := range s.Volumes {
			conf = conf || strings.HasSuffix(v.Source, filepath.Join("deploy", "nats.conf"))
			data = data || v.Target == "/data"
		}
		if !conf || !data {
			t.Errorf("%s volumes: config mounted %v, /data volume %v; want both", name, conf, data)
		}
		if s.Environment["NATS_NAME"] == nil || *s.Environment["NATS_NAME"] != name {
			t.Errorf("%s: NATS_NAME must be its own name", name)
		}
	}
}

func TestNATSConf(t *testing.T) {
	b, err := os.ReadFile("nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, want := range []string{"nats-route://nats-1:6222", "nats-route://nats-2:6222", "nats-route://nats-3:6222", "sync_interval: always", "max_payload: 8MB", "store_dir: /data"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	image := ""
	for _, name := range []string{"ingest", "frames", "infer", "retrain"} {
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("service %s missing", name)
		}
		if image == "" {
			image = s.Image
		} else if s.Image != image {
			t.Errorf("%s image %q, want the one image %q", name, s.Image, image)
		}
		if s.Build == nil || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: want build from the repository's Dockerfile", name)
		}
		if len(s.Command) == 0 || s.Command[0] != name {
			t.Errorf("%s command %v, want the %q subcommand", name, s.Command, name)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Disable {
			t.Errorf("%s has no healthcheck", name)
		}
		for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
			if d, ok := s.DependsOn[n]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: depends_on %s = %+v, want condition service_healthy", name, n, d)
			}
		}
		if s.Environment["VIREO_REPLICAS"] == nil || *s.Environment["VIREO_REPLICAS"] != "3" {
			t.Errorf("%s: VIREO_REPLICAS must be 3 in the cluster", name)
		}
	}
	infer := p.Services["infer"]
	if got := infer.GetScale(); got != 2 {
		t.Errorf("infer replicas = %d, want 2", got)
	}
	if init, ok := p.Services["models-init"]; !ok || init.Command[0] != "models" {
		t.Errorf("models-init service missing or not `vireo models push`")
	}
	for _, name := range []string{"frames", "infer", "retrain", "ingest"} {
		if d := p.Services[name].DependsOn; name == "ingest" {
			if d["models-init"].Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("ingest must wait for models-init to complete")
			}
		} else if d["ingest"].Condition != types.ServiceConditionHealthy {
			t.Errorf("%s must wait for a healthy ingest", name)
		}
	}
}

// TestComposeGPUService: infer-gpu runs only with the gpu profile, from
// the image built with -tags cuda, with one NVIDIA GPU reserved and the
// CUDA backend, beside the CPU replicas.
func TestComposeGPUService(t *testing.T) {
	if _, ok := loadCompose(t).Services["infer-gpu"]; ok {
		t.Error("infer-gpu runs without the gpu profile")
	}
	p := loadCompose(t, "gpu")
	s, ok := p.Services["infer-gpu"]
	if !ok {
		t.Fatal("service infer-gpu missing under the gpu profile")
	}
	if s.Image == p.Services["infer"].Image {
		t.Errorf("infer-gpu image %q is the CPU image", s.Image)
	}
	if s.Build == nil || s.Build.Args["VIREO_TAGS"] == nil || *s.Build.Args["VIREO_TAGS"] != "cuda" {
		t.Errorf("infer-gpu build %+v: want the Dockerfile with VIREO_TAGS=cuda", s.Build)
	}
	if strings.Join(s.Command, " ") != "infer --backend cuda --metrics-addr :9090" {
		t.Errorf("infer-gpu command %v", s.Command)
	}
	gpu := false
	if s.Deploy != nil && s.Deploy.Resources.Reservations != nil {
		for _, d := range s.Deploy.Resources.Reservations.Devices {
			for _, c := range d.Capabilities {
				gpu = gpu || (c == "gpu" && d.Driver == "nvidia" && d.Count == 1)
			}
		}
	}
	if !gpu {
		t.Errorf("infer-gpu reserves no NVIDIA GPU: %+v", s.Deploy)
	}
	if s.Environment["VIREO_REPLICAS"] == nil || s.HealthCheck == nil || s.DependsOn["ingest"].Condition != types.ServiceConditionHealthy {
		t.Errorf("infer-gpu lacks the cluster settings, the healthcheck or the wait for ingest")
	}
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ARG VIREO_TAGS", `-tags "$VIREO_TAGS"`, "nvidia-cuda-dev", "'^libcuda1$'"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	conf, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "infer-gpu") {
		t.Error("prometheus.yml does not scrape infer-gpu")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile stages %v: want a multi-stage build", froms)
	}
	for _, f := range froms {
		if !strings.Contains(f, "bookworm") {
			t.Errorf("stage FROM %s: want Debian bookworm", f)
		}
	}
}

// Prometheus scrapes what serves Prometheus text: the services' /metrics
// and the NATS exporters (NATS's own monitoring port speaks JSON).
func TestPrometheusTargets(t *testing.T) {
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	if strings.Contains(conf, "/varz") || strings.Contains(conf, ":8222") {
		t.Errorf("prometheus.yml scrapes NATS's JSON monitoring port directly")
	}
	p := loadCompose(t)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("nats-exporter-%d", i)
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("service %s missing", name)
		}
		url := fmt.Sprintf("http://nats-%d:8222", i)
		if len(s.Command) == 0 || s.Command[len(s.Command)-1] != url {
			t.Errorf("%s command %v: want it to read %s", name, s.Command, url)
		}
		if !strings.Contains(conf, name+":7777") {
			t.Errorf("prometheus.yml does not scrape %s:7777", name)
		}
	}
	if !strings.Contains(conf, "ingest:8080") {
		t.Errorf("prometheus.yml does not scrape ingest on its API port")
	}
}
