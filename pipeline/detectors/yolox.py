"""YOLOX (COCO, 80 classes) through onnxruntime: a fast closed-set detector for common objects.

Each prompt phrase must name a COCO class (a few common synonyms are accepted: "people" ->
person, "bike" -> bicycle, "motorbike" -> motorcycle ...). Any YOLOX ONNX export with the
standard [1, anchors, 85] output works; ``yolox_nano.onnx`` (416x416) is the default.

Example:
    >>> det = YOLOXDetector("yolox_nano.onnx")                    # doctest: +SKIP
    >>> det.detect(frame, ["person", "car"]).data["class_name"]   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import supervision as sv

from ..errors import ModelNotFoundError, PromptError
from ..checkpoints import check_file, checkpoint_error
from ..models import ModelFile, resolve_all
from .base import make_detections, nms
from .registry import DetectorSpec, register

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
SYNONYMS = {
    "people": "person", "persons": "person", "man": "person", "woman": "person", "child": "person",
    "children": "person", "kid": "person", "pedestrian": "person", "bike": "bicycle",
    "motorbike": "motorcycle", "plane": "airplane", "aeroplane": "airplane", "sofa": "couch",
    "television": "tv", "tvmonitor": "tv", "phone": "cell phone", "mobile phone": "cell phone",
    "table": "dining table", "plant": "potted plant", "cars": "car", "dogs": "dog", "cats": "cat",
}
DEFAULT_FILE = "yolox_nano.onnx"
#: Where the default file comes from: the YOLOX release's ONNX export (Apache-2.0).
RELEASE_URL = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx"
FIX = f"pass a YOLOX .onnx export such as {DEFAULT_FILE} ({RELEASE_URL})"
_STRIDES = (8, 16, 32)


def check_coco_phrases(phrases: Sequence[str]) -> list[int]:
    """The COCO class of each phrase; one clear line naming the phrases that are no COCO class.

    >>> check_coco_phrases(["people", "cars"])
    [0, 2]
    """
    classes = [coco_class_of(p) for p in phrases]
    unknown = [p for p, c in zip(phrases, classes) if c is None]
    if unknown:
        raise PromptError(
            f"YOLOX knows only the 80 COCO classes; {', '.join(map(repr, unknown))} "
            f"{'is not one' if len(unknown) == 1 else 'are not'}: "
            "use --detector grounding-dino for open-vocabulary prompts"
        )
    return classes  # type: ignore[return-value]


def coco_class_of(phrase: str) -> int | None:
    """COCO class index a phrase names, or None."""
    name = SYNONYMS.get(phrase, phrase)
    if name not in COCO_CLASSES and name.endswith("s"):
        name = SYNONYMS.get(name[:-1], name[:-1])
    return COCO_CLASSES.index(name) if name in COCO_CLASSES else None


class YOLOXDetector:
    """YOLOX ONNX detector; phrases are mapped to COCO classes."""

    name = "yolox"

    def __init__(self, model_path: str | Path, box_threshold: float = 0.35, nms_iou: float = 0.45,
                 device: str = "cpu") -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime's InvalidProtobuf, NoSuchFile, Fail ... are not one base class
            raise checkpoint_error(model_path, exc, "YOLOX model", FIX) from None
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        if len(inp.shape) != 4 or (isinstance(out.shape[-1], int) and out.shape[-1] != 5 + len(COCO_CLASSES)):
            raise ModelNotFoundError(f"{model_path} is an ONNX model but not a YOLOX COCO export (input {inp.shape}, "
                                     f"output {out.shape}; expected [1, 3, H, W] -> [1, anchors, 85])")
        self.input_name = inp.name
        self.input_hw = tuple(int(x) for x in inp.shape[2:4])
        self.box_threshold = box_threshold
        self.nms_iou = nms_iou
        self._grid = self._make_grid(*self.input_hw)

    @staticmethod
    def _make_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        grids, strides = [], []
        for s in _STRIDES:
            ys, xs = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
            grids.append(np.stack([xs, ys], -1).reshape(-1, 2))
            strides.append(np.full((grids[-1].shape[0], 1), s))
        return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)

    def classes_for(self, phrases: Sequence[str]) -> list[int]:
        return check_coco_phrases(phrases)

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        classes = self.classes_for(phrases)
        h, w = frame.shape[:2]
        ih, iw = self.input_hw
        ratio = min(ih / h, iw / w)
        resized = cv2.resize(frame, (int(round(w * ratio)), int(round(h * ratio))), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((ih, iw, 3), 114, dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized[..., ::-1]  # RGB -> BGR
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        raw = self.session.run(None, {self.input_name: blob})[0][0]
        grid, stride = self._grid
        centers = (raw[:, :2] + grid) * stride
        sizes = np.exp(raw[:, 2:4]) * stride
        boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1) / ratio
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        scores = raw[:, 4:5] * raw[:, 5:]
        xyxy, conf, cls = [], [], []
        for phrase_idx, coco_idx in enumerate(classes):
            s = scores[:, coco_idx]
            sel = np.nonzero(s >= self.box_threshold)[0]
            if sel.size == 0:
                continue
            kept = sel[nms(boxes[sel], s[sel], self.nms_iou)]
            xyxy.append(boxes[kept]); conf.append(s[kept]); cls.append(np.full(len(kept), phrase_idx))
        if not xyxy:
            return make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), phrases)
        return make_detections(np.concatenate(xyxy), np.concatenate(conf), np.concatenate(cls), phrases)


def _weights(config) -> list[ModelFile]:
    return [ModelFile(DEFAULT_FILE, explicit=config.model, origin=RELEASE_URL,
                      check=lambda path: check_file(path, "YOLOX model", FIX))]


def _build(config, device: str) -> YOLOXDetector:
    path, = resolve_all(_weights(config))
    return YOLOXDetector(path, config.box_threshold, config.nms_iou, device)


register(DetectorSpec(
    "yolox", _build, needs=f"weights {DEFAULT_FILE} (in $PROMPTRACK_MODEL_DIR or a path; from the YOLOX release)",
    about="80 COCO classes, fast", default_model=DEFAULT_FILE, file_suffixes=(".onnx",),
    check_prompt=check_coco_phrases, weights=_weights))
