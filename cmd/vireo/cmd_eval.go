package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"vireo/pkg/backend"
	"vireo/pkg/data"
	"vireo/pkg/model"
	"vireo/pkg/train"
)

func init() {
	register(command{"eval", "evaluate a model directory on a prepared dataset's validation split (--json: one object)", runEval})
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	bc := backendFlags(fs)
	modelDir := fs.String("model", "", "model directory (model.onnx + manifest.json) (required)")
	dataName := fs.String("data", "", "prepared dataset: a name under --data-root or a folder holding dataset.json (required)")
	root := fs.String("data-root", dataRoot(), "where `vireo data prepare` put the datasets [VIREO_DATA]")
	split := fs.String("split", "valid", "which part to evaluate: valid or train")
	bs := fs.Int("bs", 64, "batch size")
	tta := fs.Bool("tta", false, "test-time augmentation: also run each image mirrored left to right and average the two predictions (fastai's TTA with flips; twice the compute)")
	jsonOut := fs.Bool("json", false, "print one JSON object: the task's metrics (accuracy | accuracy_thresh, fbeta | acc_no_void, iou | mse, point_error) plus model, data, split, items")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelDir == "" || *dataName == "" {
		return usagef("eval: --model and --data are required")
	}
	if *split != "valid" && *split != "train" {
		return usagef("eval: --split %q: want valid or train", *split)
	}
	man, onnxBytes, err := model.Load(*modelDir)
	if err != nil {
		return err
	}
	dir, err := data.Locate(*root, *dataName)
	if err != nil {
		return err
	}
	sp, err := data.Open(dir)
	if err != nil {
		return err
	}
	ds := sp.Valid
	if *split == "train" {
		ds = sp.Train
	}
	b, err := backend.Open(*bc)
	if err != nil {
		return err
	}
	defer b.Close()
	met, err := train.Evaluate(ctx, b, man, onnxBytes, ds, sp.Meta, train.EvalOptions{BatchSize: *bs, TTA: *tta})
	if err != nil {
		return err
	}
	out := met.JSON()
	if *jsonOut {
		out["model"] = man.Name + "/" + man.Version
		out["data"] = *dataName
		out["split"] = *split
		out["items"] = met.Samples()
		if *tta {
			out["tta"] = "flip"
		}
		if pc := met.PerClass(); pc != nil {
			out["per_class"] = pc
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	with := ""
	if *tta {
		with = ", with flip TTA"
	}
	fmt.Fprintf(stdout, "%s/%s on %s (%s, %d items%s):\n", man.Name, man.Version, *dataName, *split, met.Samples(), with)
	vals := met.Values()
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "  %-20s %.6f\n", k, vals[k])
	}
	if pc := met.PerClass(); pc != nil {
		how := "argmax"
		if man.Task == model.MultiLabel {
			how = fmt.Sprintf("threshold %.2f", man.Threshold)
		}
		fmt.Fprintf(stdout, "  per class (%s):\n  %-12s %6s %6s %6s %9s %7s\n", how, "class", "tp", "fp", "fn", "precision", "recall")
		for _, name := range man.Labels {
			c := pc[name]
			fmt.Fprintf(stdout, "  %-12s %6d %6d %6d %9.3f %7.3f\n", name, c.TP, c.FP, c.FN, ratio(c.TP, c.TP+c.FP), ratio(c.TP, c.TP+c.FN))
		}
	}
	return nil
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
