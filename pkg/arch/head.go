package arch

import "vireo/pkg/graph"

// poolHead adds fastai's create_head (lin_ftrs=[Hidden], ps=Dropout) on the
// encoder output x (N,c,h,w), in layer group 2:
//
//	concat(GlobalMaxPool(x), GlobalAveragePool(x)) (N,2c,1,1) -> Flatten (N,2c)
//	-> BN -> Dropout(p/2) -> Linear(2c->Hidden) -> ReLU
//	-> BN -> Dropout(p) -> Linear(Hidden->out)
//
// The output is unbounded: logits for classification (softmax or sigmoid
// belong to the loss and the post-processing) and plain values for
// regression, as fastai's BIWI model, which is trained with MSELossFlat on
// targets scaled to [-1,1] and has no final Tanh.
func (b *builder) poolHead(x string, c, out int) string {
	b.group = 2
	mp := b.node("GlobalMaxPool", "head.maxpool", []string{x}, nil)
	ap := b.node("GlobalAveragePool", "head.avgpool", []string{x}, nil)
	y := b.node("Concat", "head.concat", []string{mp, ap}, map[string]graph.Attr{"axis": intAttr(1)})
	y = b.node("Flatten", "head.flatten", []string{y}, map[string]graph.Attr{"axis": intAttr(1)})
	y = b.bn(y, "head.bn1", 2*c, false)
	y = b.dropout(y, "head.drop1", b.cfg.Dropout/2)
	y = b.linear(y, "head.fc1", 2*c, b.cfg.Hidden)
	y = b.relu(y, "head.relu")
	y = b.bn(y, "head.bn2", b.cfg.Hidden, false)
	y = b.dropout(y, "head.drop2", b.cfg.Dropout)
	return b.linear(y, "head.fc2", b.cfg.Hidden, out)
}
