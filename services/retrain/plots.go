package retrain

import (
	"github.com/rs/zerolog"

	"vireo/pkg/modelstore"
	"vireo/pkg/train"
)

// trainingPlots renders a run's loss and learning-rate plots (the
// Learner's Recorder, as `vireo train` writes them beside a model) as the
// candidate version's extra files, which the dashboard shows per version.
// A plot that cannot be rendered is left out and logged: it never costs
// the candidate.
func trainingPlots(rec *train.Recorder, log zerolog.Logger) []modelstore.File {
	if len(rec.Losses) == 0 {
		return nil
	}
	var out []modelstore.File
	for _, p := range []struct {
		name   string
		render func() ([]byte, error)
	}{
		{modelstore.LossPlotObject, rec.LossesPNG},
		{modelstore.LRPlotObject, rec.LRPNG},
	} {
		b, err := p.render()
		if err != nil || len(b) > modelstore.MaxFileBytes {
			log.Warn().Err(err).Str("plot", p.name).Int("bytes", len(b)).Msg("training plot left out of the candidate")
			continue
		}
		out = append(out, modelstore.File{Name: p.name, Data: b})
	}
	return out
}
