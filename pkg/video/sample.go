package video

import (
	"math"
	"time"
)

// Sampler decides which decoded frames a source emits. It is a plain value
// owned by one capture loop (no locking). With EveryN > 1 it keeps frames whose
// seq is a multiple of EveryN (0, N, 2N, ...). With FPS > 0 it keeps the first
// frame and then the first frame at or after each multiple of 1/FPS of stream
// time after it; stream time comes from the source (CAP_PROP_POS_MSEC or
// frame index / declared fps), so a file sampled by fps gives the same frames
// on every run. With neither, every frame is kept.
//
// Reference for FPS (t in stream time, period = 1/FPS):
//
//	if first || t >= next { keep; next = t0 + k*period for the smallest k with next > t }
type Sampler struct {
	EveryN int
	FPS    float64

	started bool
	next    time.Duration
	origin  time.Duration
	k       int64
}

// Keep reports whether the frame with this seq and stream time is emitted.
// Calls must come in seq order.
func (s *Sampler) Keep(seq int64, t time.Duration) bool {
	switch {
	case s.FPS > 0:
		period := float64(time.Second) / s.FPS
		if !s.started {
			s.started = true
			s.origin = t
			s.k = 1
			s.next = s.origin + time.Duration(math.Round(period))
			return true
		}
		if t < s.next {
			return false
		}
		// Advance to the first grid point after t. Computing from the origin
		// (not by repeated addition) keeps float error from accumulating.
		s.k = int64(float64(t-s.origin)/period) + 1
		s.next = s.origin + time.Duration(math.Round(float64(s.k)*period))
		for s.next <= t { // guard the rounding edge
			s.k++
			s.next = s.origin + time.Duration(math.Round(float64(s.k)*period))
		}
		return true
	case s.EveryN > 1:
		return seq%int64(s.EveryN) == 0
	default:
		return true
	}
}

// Skips reports, before the frame is decoded, that Keep will drop the frame
// with this seq whatever its time (EveryN sampling only), so a source may
// skip converting it. Keep must still be called for that frame.
func (s *Sampler) Skips(seq int64) bool {
	return s.FPS <= 0 && s.EveryN > 1 && seq%int64(s.EveryN) != 0
}
