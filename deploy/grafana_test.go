package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"vireo/services/frames"
	"vireo/services/infer"
	"vireo/services/ingest"
	"vireo/services/retrain"
)

func TestComposeGrafana(t *testing.T) {
	p := loadCompose(t)
	g, ok := p.Services["grafana"]
	if !ok {
		t.Fatal("service grafana missing")
	}
	if !strings.HasPrefix(g.Image, "grafana/grafana") {
		t.Errorf("grafana image %q: want the official grafana image", g.Image)
	}
	mounts := map[string]string{}
	for _, v := range g.Volumes {
		mounts[v.Target] = v.Source
	}
	root, _ := filepath.Abs("..")
	for target, src := range map[string]string{
		"/etc/grafana/provisioning":   filepath.Join(root, "deploy", "grafana", "provisioning"),
		"/var/lib/grafana/dashboards": filepath.Join(root, "deploy", "grafana", "dashboards"),
	} {
		if mounts[target] != src {
			t.Errorf("grafana mount %s from %q, want %q", target, mounts[target], src)
		}
	}
	if _, ok := g.DependsOn["prometheus"]; !ok {
		t.Error("grafana must depend on prometheus")
	}
	if len(g.Ports) == 0 || g.Ports[0].Target != 3000 {
		t.Errorf("grafana ports %+v, want 3000 published", g.Ports)
	}
	if _, ok := p.Services["prometheus"]; !ok {
		t.Fatal("service prometheus missing")
	}

	// The data source points at the compose Prometheus with the uid the
	// dashboard uses; the dashboard provider reads the mounted folder.
	var dsf struct {
		Datasources []struct {
			Name, UID, Type, URL string
		}
	}
	readYAML(t, filepath.Join("grafana", "provisioning", "datasources", "prometheus.yaml"), &dsf)
	if len(dsf.Datasources) != 1 || dsf.Datasources[0].Type != "prometheus" || dsf.Datasources[0].URL != "http://prometheus:9090" || dsf.Datasources[0].UID != dashboardUID {
		t.Errorf("data sources %+v: want one prometheus at http://prometheus:9090 with uid %q", dsf.Datasources, dashboardUID)
	}
	var prov struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	readYAML(t, filepath.Join("grafana", "provisioning", "dashboards", "vireo.yaml"), &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard providers %+v: want one file provider of /var/lib/grafana/dashboards", prov.Providers)
	}
}

const dashboardUID = "prometheus" // the data source uid the dashboard's panels name

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type grafanaDashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricRE = regexp.MustCompile(`\bvireo_[a-zA-Z0-9_]+`)

// exported is every metric family the services export.
func exported() map[string]bool {
	out := map[string]bool{}
	for _, names := range [][]string{ingest.MetricNames(), frames.MetricNames(), infer.MetricNames(), retrain.MetricNames()} {
		for _, n := range names {
			out[n] = true
		}
	}
	return out
}

// TestGrafanaDashboardQueries: every panel of deploy/grafana/dashboards
// queries the provisioned data source, and every metric its queries name
// is one the services export (histograms through _bucket, _sum, _count);
// the board covers throughput, p50/p99 latency, batch size, drops,
// versions and retrain outcomes.
func TestGrafanaDashboardQueries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "dashboards", "vireo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard uid %q title %q with %d panels: want all set", d.UID, d.Title, len(d.Panels))
	}
	known := exported()
	if len(known) < 20 {
		t.Fatalf("services export %d metrics: the list is incomplete", len(known))
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	var all strings.Builder
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != dashboardUID {
			t.Errorf("panel %q data source uid %q, want %q", p.Title, p.Datasource.UID, dashboardUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := metricRE.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q query %s names no vireo_ metric", p.Title, tg.RefID)
			}
			for _, n := range names {
				base := n
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suf); ok && known[b] {
						base = b
					}
				}
				if !known[base] {
					t.Errorf("panel %q query %s: metric %s is not exported by any service", p.Title, tg.RefID, n)
				}
				used[base] = true
			}
			all.WriteString(tg.Expr + "\n")
		}
	}
	q := all.String()
	for what, want := range map[string]string{
		"throughput":      "rate(vireo_infer_frames_total",
		"p50 latency":     "histogram_quantile(0.5, sum by (le, model, source) (rate(vireo_infer_latency_seconds_bucket",
		"p99 latency":     "histogram_quantile(0.99, sum by (le, model, source) (rate(vireo_infer_latency_seconds_bucket",
		"batch size":      "vireo_infer_batch_size",
		"drops":           "vireo_frames_dropped_total",
		"versions":        "vireo_infer_model_version_info",
		"retrain outcome": "sum by (model, outcome) (increase(vireo_retrain_runs_total",
	} {
		if !strings.Contains(q, want) {
			t.Errorf("dashboard has no %s panel (no query with %q)", what, want)
		}
	}
	var unused []string
	for n := range known {
		if !used[n] {
			unused = append(unused, n)
		}
	}
	slices.Sort(unused)
	t.Logf("exported metrics not on the board: %v", unused)
}
