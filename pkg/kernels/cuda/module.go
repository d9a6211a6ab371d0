//go:build cuda

package cuda

import (
	"embed"
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/cu"
)

//go:embed ptx/*.ptx
var ptxFS embed.FS

// moduleKernels lists the kernels of each CUDA source (ptx/<module>_<arch>.ptx).
var moduleKernels = map[string][]string{
	"activation":  {"act_fwd", "act_bwd", "dropout_fwd", "dropout_bwd"},
	"backward":    {"sum_axes", "bn_train", "bn_backward"},
	"conv":        {"conv2d_igemm", "conv2d_direct", "convt2d_direct", "conv_filter_grad", "conv_bias_grad"},
	"elementwise": {"binary_same", "binary_bcast", "axpy", "scale"},
	"gemm":        {"sgemm"},
	"input":       {"normalize_u8"},
	"layout":      {"copy_rows", "depth_to_space", "gather_tab", "scatter_tab"},
	"loss":        {"loss_part", "loss_finish", "loss_grad", "ce_part", "ce_grad", "sgd_step", "adamw_step"},
	"norm":        {"bn_infer"},
	"pool":        {"pool2d_fwd", "pool2d_bwd", "global_pool_fwd", "global_pool_bwd"},
	"reduce":      {"softmax_fwd", "softmax_bwd", "argmax"},
	"resize":      {"resize_nearest_bwd", "resize_linear_fwd", "resize_linear_bwd"},
	"tensorcore": {"tc_gemm_f16_128", "tc_gemm_f16_64", "tc_gemm_bf16_128", "tc_gemm_bf16_64",
		"tc_conv_f16_128", "tc_conv_f16_64", "tc_conv_bf16_128", "tc_conv_bf16_64"},
}

// loadModules loads the PTX for the newest arch the device supports
// (compute_90 on Hopper and newer, else compute_80) and resolves every
// kernel; it runs on the owner goroutine.
func (b *Backend) loadModules() error {
	arch := 80
	if b.info.ComputeMajor >= 9 {
		arch = 90
	}
	b.info.PTXArch = arch
	for mod, names := range moduleKernels {
		src, err := ptxFS.ReadFile(fmt.Sprintf("ptx/%s_%d.ptx", mod, arch))
		if err != nil {
			return fmt.Errorf("cuda: embedded PTX %s for compute_%d: %w", mod, arch, err)
		}
		m, err := cu.LoadData(string(src))
		if err != nil {
			return fmt.Errorf("cuda: load PTX module %s (compute_%d) on %s: %w", mod, arch, b.info.Name, err)
		}
		b.modules = append(b.modules, m)
		for _, n := range names {
			f, err := m.Function(n)
			if err != nil {
				return fmt.Errorf("cuda: kernel %s in module %s: %w", n, mod, err)
			}
			b.fns[n] = f
		}
	}
	return nil
}

const blockSize = 256

// gridFor is the block count of a grid-stride launch over n elements:
// enough blocks to cover n, capped at 32 per multiprocessor.
func (b *Backend) gridFor(n int64) int {
	g := (n + blockSize - 1) / blockSize
	return int(max(1, min(g, int64(32*max(1, b.info.Multiprocessors)))))
}

// launch runs kernel name over n elements with a grid-stride loop; see
// launchGrid for the arguments.
func (b *Backend) launch(name string, n int64, args ...any) error {
	if n <= 0 {
		return nil
	}
	return b.launchGrid(name, [3]int{b.gridFor(n), 1, 1}, blockSize, args...)
}

// launchGrid launches kernel name on the default stream. Arguments are
// cu.DevicePtr, int, int64 and uint64 (8-byte kernel parameters: pointers,
// long long) and float32 (4 bytes). Each goes in its own 8-byte slot,
// which is what gorgonia.org/cu's Launch copies per parameter.
func (b *Backend) launchGrid(name string, grid [3]int, block int, args ...any) error {
	f, ok := b.fns[name]
	if !ok {
		return fmt.Errorf("cuda: kernel %s not loaded", name)
	}
	slots := make([]uint64, len(args))
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case cu.DevicePtr:
			slots[i] = uint64(v)
		case int:
			slots[i] = uint64(int64(v))
		case int64:
			slots[i] = uint64(v)
		case uint64:
			slots[i] = v
		case float32:
			slots[i] = uint64(math.Float32bits(v))
		default:
			return fmt.Errorf("cuda: kernel %s: argument %d has type %T", name, i, a)
		}
		params[i] = unsafe.Pointer(&slots[i])
	}
	if err := f.Launch(grid[0], grid[1], grid[2], block, 1, 1, 0, cu.Stream{}, params); err != nil {
		return fmt.Errorf("cuda: launch %s grid %v block %d: %w", name, grid, block, err)
	}
	return nil
}
