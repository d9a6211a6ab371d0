// Package metricstest checks a service's /metrics in tests: it scrapes the
// endpoint (or renders a registry through the same handler as ops.Handle),
// parses the text with the Prometheus text parser (expfmt), which fails
// on anything Prometheus would reject, and reads counters and histogram
// sample counts by name and labels.
package metricstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are parsed metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (a /metrics endpoint) as Prometheus does and parses it.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	return Parse(t, b)
}

// Render serves g through promhttp (as ops.Handle does) and parses it.
func Render(t testing.TB, g prometheus.Gatherer) Families {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	defer srv.Close()
	return Scrape(t, srv.URL)
}

// Parse parses the Prometheus text format and checks each family's name
// conventions: the vireo_ prefix, counters end in _total, histograms of
// time end in _seconds.
func Parse(t testing.TB, text []byte) Families {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse as Prometheus text: %v\n%s", err, text)
	}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "vireo_") {
			continue // Go runtime and process collectors
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s: want a _total suffix", name)
			}
		case dto.MetricType_HISTOGRAM:
			if strings.Contains(mf.GetHelp(), "ime") && !strings.HasSuffix(name, "_seconds") {
				t.Errorf("histogram of time %s: want a _seconds suffix", name)
			}
		}
	}
	return Families(mfs)
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Count is the sum of a histogram's sample counts over the series that
// have labels (0 when there is none).
func (f Families) Count(name string, labels map[string]string) uint64 {
	var n uint64
	if mf := f[name]; mf != nil {
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// Value is the sum of a counter's or gauge's values over the series that
// have labels.
func (f Families) Value(name string, labels map[string]string) float64 {
	var v float64
	if mf := f[name]; mf != nil {
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}

// Require fails the test unless every name is a family in f.
func (f Families) Require(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if f[n] == nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("metrics missing: %s", strings.Join(missing, ", "))
	}
}

// String lists the family names (for failure messages).
func (f Families) String() string {
	var b strings.Builder
	for n := range f {
		fmt.Fprintln(&b, n)
	}
	return b.String()
}
