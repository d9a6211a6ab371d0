package main

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	line, src, ended, seq, _ := summarize([]byte(`{"schema_version":1,"source":"vtest","seq":45,"model":"people","model_version":"v0002","task":"segment","latency_ms":12.5,"classes":["background","person","Void"],"class_fraction":[0.9,0.1,0]}`))
	if src != "vtest" || ended || seq == nil || *seq != 45 || !strings.Contains(line, "person 10.0%") || !strings.Contains(line, "people@v0002") {
		t.Errorf("segment result: %q src %q ended %v seq %v", line, src, ended, seq)
	}
	line, src, ended, seq, frames := summarize([]byte(`{"schema_version":1,"event":"end_of_stream","source":"cam","model":"m","last_seq":790,"frames":159,"reason":"eof"}`))
	if src != "cam" || !ended || seq != nil || frames != 159 || !strings.Contains(line, "159 frames") {
		t.Errorf("end of stream: %q src %q ended %v frames %d", line, src, ended, frames)
	}
	line, _, _, seq, _ = summarize([]byte(`{"schema_version":1,"source":"s","seq":3,"model":"f","model_version":"v1","task":"classify","labels":["coat"],"scores":{"coat":0.8,"shirt":0.2}}`))
	if seq == nil || !strings.Contains(line, "coat 0.80") || strings.Contains(line, "shirt") {
		t.Errorf("classify result: %q", line)
	}
	if line, _, _, _, _ := summarize([]byte("not json")); line != "" {
		t.Errorf("garbage: %q, want no line", line)
	}
}
