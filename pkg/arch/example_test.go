package arch_test

import (
	"fmt"

	"vireo/pkg/arch"
	"vireo/pkg/graph"
)

func ExampleBuild() {
	// A quarter-width ResNet-18 U-Net for 4 classes, pixel-shuffle decoder.
	m, err := arch.Build("resnet18-unet@0.25", arch.TaskSegment, arch.Config{Classes: 4, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	shapes, err := graph.InferShapes(m.Graph, map[string][]int{"input": {2, 3, 64, 96}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Arch, m.Task, "stride", m.Stride)
	fmt.Println("output", shapes["output"])
	for i, g := range m.Groups {
		fmt.Printf("group %d: %d initializers, first %s\n", i, len(g), g[0])
	}
	// Output:
	// resnet18-unet@0.25 segment stride 32
	// output [2 4 64 96]
	// group 0: 50 initializers, first conv1.weight
	// group 1: 50 initializers, first layer3.0.conv1.weight
	// group 2: 78 initializers, first decoder.middle.0.conv.weight
}
