//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/cu"

	"vireo/pkg/kernels"
)

// devMem is one device allocation; tensors (and views of them) point at it
// with Tensor.Dev and an element Tensor.Offset.
type devMem struct {
	owner *Backend
	ptr   cu.DevicePtr // 0 once freed; read and written on the owner only
	bytes int
}

// Bytes implements kernels.DeviceMem.
func (m *devMem) Bytes() int { return m.bytes }

// addr returns the device address of t's first element after checking
// that t is a live tensor of this backend whose elements lie inside its
// allocation. It runs on the owner goroutine.
func (b *Backend) addr(name string, t *kernels.Tensor) (cu.DevicePtr, error) {
	if t == nil {
		return 0, fmt.Errorf("%w: %s is nil", kernels.ErrShape, name)
	}
	m, ok := t.Dev.(*devMem)
	if !ok || m.owner != b {
		if t.Data != nil {
			return 0, fmt.Errorf("%w: %s lives in host memory (want a tensor allocated by the cuda backend)", kernels.ErrDevice, name)
		}
		return 0, fmt.Errorf("%w: %s was not allocated by this cuda backend", kernels.ErrDevice, name)
	}
	if m.ptr == 0 {
		return 0, fmt.Errorf("%w: %s was freed", kernels.ErrDevice, name)
	}
	for i, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: %s: dimension %d of %v is %d (want >= 0)", kernels.ErrShape, name, i, t.Shape, d)
		}
	}
	if t.Offset < 0 || (t.Offset+t.Numel())*4 > m.bytes {
		return 0, fmt.Errorf("%w: %s %v at offset %d overruns its allocation of %d floats", kernels.ErrShape, name, t.Shape, t.Offset, m.bytes/4)
	}
	return m.ptr + cu.DevicePtr(4*t.Offset), nil
}

// Alloc implements kernels.Memory: a zeroed device tensor.
func (b *Backend) Alloc(s kernels.Shape) (*kernels.Tensor, error) {
	for i, d := range s {
		if d < 0 {
			return nil, fmt.Errorf("%w: alloc: dimension %d of %v is %d (want >= 0)", kernels.ErrShape, i, s, d)
		}
	}
	n := s.Numel()
	bytes := int64(max(1, n)) * 4
	m := &devMem{owner: b, bytes: int(bytes)}
	err := b.do(func() error {
		p, err := cu.MemAlloc(bytes)
		if err != nil {
			free, total, _ := cu.MemInfo()
			return fmt.Errorf("cuda: alloc %v (%d bytes; device has %d of %d bytes free): %w", s, bytes, free, total, err)
		}
		if err := cu.MemsetD32(p, 0, bytes/4); err != nil {
			_ = cu.MemFree(p)
			return fmt.Errorf("cuda: zero %v: %w", s, err)
		}
		m.ptr = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kernels.Tensor{Shape: s.Clone(), Dev: m}, nil
}

// Free implements kernels.Memory: it releases t's whole allocation (views
// of it included). Freeing twice, or a tensor of another backend, is a
// no-op logged as a warning.
func (b *Backend) Free(t *kernels.Tensor) {
	if t == nil {
		return
	}
	m, ok := t.Dev.(*devMem)
	if !ok || m.owner != b {
		b.log.Warn().Msg("cuda: free of a tensor this backend did not allocate")
		return
	}
	err := b.do(func() error {
		if m.ptr == 0 {
			return nil
		}
		p := m.ptr
		m.ptr = 0
		return cu.MemFree(p)
	})
	if err != nil {
		b.log.Warn().Err(err).Msg("cuda: free")
	}
}

// Upload implements kernels.Memory.
func (b *Backend) Upload(dst *kernels.Tensor, src []float32) error {
	return b.do(func() error {
		p, err := b.addr("upload: dst", dst)
		if err != nil {
			return err
		}
		if len(src) != dst.Numel() {
			return fmt.Errorf("%w: upload: %d values into %v (want %d)", kernels.ErrShape, len(src), dst.Shape, dst.Numel())
		}
		if len(src) == 0 {
			return nil
		}
		if err := cu.MemcpyHtoD(p, unsafe.Pointer(&src[0]), int64(4*len(src))); err != nil {
			return fmt.Errorf("cuda: upload %v: %w", dst.Shape, err)
		}
		return nil
	})
}

// Download implements kernels.Memory; it waits for the kernels queued
// before it.
func (b *Backend) Download(dst []float32, src *kernels.Tensor) error {
	return b.do(func() error {
		p, err := b.addr("download: src", src)
		if err != nil {
			return err
		}
		if len(dst) != src.Numel() {
			return fmt.Errorf("%w: download: %v into %d values (want %d)", kernels.ErrShape, src.Shape, len(dst), src.Numel())
		}
		if len(dst) == 0 {
			return nil
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), p, int64(4*len(dst))); err != nil {
			return fmt.Errorf("cuda: download %v: %w", src.Shape, err)
		}
		return nil
	})
}

// Fill implements kernels.Memory.
func (b *Backend) Fill(t *kernels.Tensor, v float32) error {
	return b.do(func() error {
		p, err := b.addr("fill: t", t)
		if err != nil {
			return err
		}
		if n := t.Numel(); n > 0 {
			if err := cu.MemsetD32(p, math.Float32bits(v), int64(n)); err != nil {
				return fmt.Errorf("cuda: fill %v: %w", t.Shape, err)
			}
		}
		return nil
	})
}

// Copy implements kernels.Memory: dst and src must have the same number
// of elements (shapes may differ).
func (b *Backend) Copy(dst, src *kernels.Tensor) error {
	return b.do(func() error {
		pd, err := b.addr("copy: dst", dst)
		if err != nil {
			return err
		}
		ps, err := b.addr("copy: src", src)
		if err != nil {
			return err
		}
		if dst.Numel() != src.Numel() {
			return fmt.Errorf("%w: copy: src %v into dst %v (numel got=%d, want=%d)", kernels.ErrShape, src.Shape, dst.Shape, src.Numel(), dst.Numel())
		}
		if n := dst.Numel(); n > 0 && pd != ps {
			if err := cu.MemcpyDtoD(pd, ps, int64(4*n)); err != nil {
				return fmt.Errorf("cuda: copy %v: %w", src.Shape, err)
			}
		}
		return nil
	})
}

// stage copies host bytes into the scratch buffer (grown as needed) and
// returns its address; it runs on the owner goroutine. The copy waits for
// earlier kernels (legacy default stream), so a kernel still reading the
// previous contents is done before they change.
func (b *Backend) stage(src unsafe.Pointer, bytes int64) (cu.DevicePtr, error) {
	if bytes > b.scratch.bytes {
		if b.scratch.ptr != 0 {
			if err := cu.Synchronize(); err != nil {
				return 0, fmt.Errorf("cuda: synchronize before growing scratch: %w", err)
			}
			if err := cu.MemFree(b.scratch.ptr); err != nil {
				return 0, fmt.Errorf("cuda: free scratch: %w", err)
			}
			b.scratch = devBuf{}
		}
		size := max(bytes, 1<<16)
		p, err := cu.MemAlloc(size)
		if err != nil {
			return 0, fmt.Errorf("cuda: scratch of %d bytes: %w", size, err)
		}
		b.scratch = devBuf{ptr: p, bytes: size}
	}
	if bytes > 0 {
		if err := cu.MemcpyHtoD(b.scratch.ptr, src, bytes); err != nil {
			return 0, fmt.Errorf("cuda: stage %d bytes: %w", bytes, err)
		}
	}
	return b.scratch.ptr, nil
}

// stageInts stages int64 launch metadata.
func (b *Backend) stageInts(v []int64) (cu.DevicePtr, error) {
	if len(v) == 0 {
		return 0, nil
	}
	return b.stage(unsafe.Pointer(&v[0]), int64(8*len(v)))
}
