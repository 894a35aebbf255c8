"""DINO-X and Grounding DINO 1.5 / 1.6 Pro through the DeepDataSpace (DDS) cloud API, V2 tasks.

A keyframe is downscaled to at most ``image_max_side`` pixels, JPEG-encoded and sent inline
(base64 data URI) to ``POST {api_url}/v2/task/<family>/detection`` with the header
``Token: <token>``; the answer is a task id, polled at ``GET {api_url}/v2/task_status/<id>``
until its status is ``success`` (or ``failed``). Every answer is ``{"code": 0, "msg": "ok",
"data": ...}``; a finished task's ``data.result.objects`` holds ``bbox`` [x1, y1, x2, y2],
``score``, ``category`` and, for DINO-X when asked, ``mask`` as COCO RLE (we ask for
``mask_format: coco_rle``). Boxes and masks are scaled back to frame pixels; masks come back in
``Detections.mask`` (frame-size booleans) so SAM 2 can take them as mask prompts.

Prompts by example (DINO-X, T-Rex2): the V2 API's visual prompt, ``"prompt": {"type":
"visual_images", "visual_images": [{"image": <data URI>, "interactions": [{"type": "rect",
"rect": [x1, y1, x2, y2], "category_id": 1}]}]}``, rects in pixels of the (downscaled) example
image. Each example label is one task per keyframe (one category per task, so every object it
returns is that label's); the example images are encoded once. Phrases given with examples go in
a text task of their own (DINO-X), and the answers are merged. The API takes positive examples only.

Prompt-free mode (DINO-X only): the prompt ``<prompt_free>`` asks for everything DINO-X knows
(``{"type": "universal"}``); labels are the category names it returns.

Why plain HTTP (``urllib``) rather than ``dds-cloudapi-sdk``: two JSON calls do not need a
dependency; the SDK uses fixed short timeouts, no retries and bare ``RuntimeError``s, and always
calls ``https://<host>`` (no way to point it at a local test server). Here we own timeouts,
exponential backoff on 429 / 5xx / timeouts, and the split between errors that skip a keyframe
(:class:`DetectorUnavailable`) and errors that stop the run (:class:`DetectorAccessError`: bad
token, exhausted quota; a service never reached at all).

The token comes from ``$DDS_API_TOKEN`` or ``detector.token``; it is sent only in the request
header, never logged, never in an error message, never in ``repr``.

Example:
    >>> det = DDSCloudDetector("dino-x", token="...")                         # doctest: +SKIP
    >>> found = det.detect(frame, ["person", "red car"])                     # doctest: +SKIP
    >>> found.mask.shape == (len(found), *frame.shape[:2])                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np
import supervision as sv

from ..errors import ConfigError, PromptError, PromptrackError
from ..exemplars import VisualPrompt
from .base import PROMPT_FREE, DetectorAccessError, DetectorUnavailable, class_nms, make_detections
from .registry import DetectorSpec, register

logger = logging.getLogger(__name__)


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, default ports filled in: what "the same server" means."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


class _TokenStaysHome(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib does, but drops the ``Token`` header when one leads to another
    server (other host, port or scheme: an https API never sends it over plain http)."""

    def __init__(self, api_url: str) -> None:
        self.home = _origin(api_url)

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != self.home:
            new.remove_header("Token")
        return new

TOKEN_ENV = "DDS_API_TOKEN"
DEFAULT_API_URL = "https://api.deepdataspace.com"
TOKEN_URL = "https://cloud.deepdataspace.com"


@dataclass(frozen=True)
class CloudModel:
    """One model of the DDS V2 task API."""

    model: str  # the API's model name
    path: str  # the task endpoint
    masks: bool  # can return instance masks
    text: bool = True  # takes text prompts
    visual: bool = False  # takes visual prompts (example boxes)


CLOUD_MODELS = {
    "dino-x": CloudModel("DINO-X-1.0", "/v2/task/dinox/detection", masks=True, visual=True),
    "t-rex-2": CloudModel("T-Rex-2.0", "/v2/task/trex/detection", masks=False, text=False, visual=True),
    "grounding-dino-1.5-pro": CloudModel("GroundingDino-1.5-Pro", "/v2/task/grounding_dino/detection", masks=False),
    "grounding-dino-1.6-pro": CloudModel("GroundingDino-1.6-Pro", "/v2/task/grounding_dino/detection", masks=False),
}


def resolve_token(token: str | None) -> str:
    """The API token: ``token`` when given, else ``$DDS_API_TOKEN``; one clear line when neither."""
    token = (token or os.environ.get(TOKEN_ENV) or "").strip()
    if not token:
        raise DetectorAccessError(
            f"the DDS cloud detectors need an API token: set {TOKEN_ENV}=<token> or "
            f"--set detector.token=<token> (get one at {TOKEN_URL})"
        )
    return token


class DDSCloudDetector:
    """A DDS cloud model (DINO-X, Grounding DINO 1.5/1.6 Pro) behind the Detector protocol.

    Args:
        model: a key of :data:`CLOUD_MODELS` ("dino-x", "grounding-dino-1.6-pro", ...).
        token: API token; None reads ``$DDS_API_TOKEN``.
        timeout: seconds per HTTP request.
        retries: extra attempts per request on 429, 5xx, timeouts and dropped connections.
        image_max_side: keyframes are downscaled so their longest side is at most this.
        backoff: first retry delay in seconds, doubled per retry (with jitter), capped at 30 s.
        task_timeout: seconds to wait for one task to finish before giving up on the keyframe.
        masks: ask for masks when the model has them (DINO-X).
    """

    def __init__(self, model: str = "dino-x", token: str | None = None, api_url: str = DEFAULT_API_URL,
                 box_threshold: float = 0.25, nms_iou: float = 0.8, timeout: float = 10.0, retries: int = 3,
                 image_max_side: int = 1536, backoff: float = 1.0, poll_interval: float = 0.5,
                 task_timeout: float = 60.0, masks: bool = True) -> None:
        if model not in CLOUD_MODELS:
            raise ConfigError(f"unknown DDS cloud model {model!r}: use one of {', '.join(CLOUD_MODELS)}")
        if timeout <= 0 or retries < 0 or image_max_side < 32:
            raise ConfigError("detector.timeout must be > 0, detector.retries >= 0, detector.image_max_side >= 32")
        self.name = model
        self.spec = CLOUD_MODELS[model]
        self._token = resolve_token(token)
        self.api_url = api_url.rstrip("/")
        # The token goes to the API host only: a redirect elsewhere is followed without it.
        self._opener = urllib.request.build_opener(_TokenStaysHome(self.api_url))
        self.box_threshold = box_threshold
        self.nms_iou = nms_iou
        self.timeout = timeout
        self.retries = retries
        self.image_max_side = image_max_side
        self.backoff = backoff
        self.poll_interval = poll_interval
        self.task_timeout = task_timeout
        self.masks = masks and self.spec.masks
        self.categories: list[str] = []  # prompt-free labels seen so far; class_id indexes them
        self._answered = False  # has the service ever answered? (before that, "unreachable" is fatal)
        self._detected = False  # has a detection ever worked? (before that, a refusal is fatal)
        self._visual: tuple | None = None  # (prompt, visual prompts) of the last VisualPrompt

    def __repr__(self) -> str:  # never shows the token
        return f"DDSCloudDetector(model={self.spec.model!r}, api_url={self.api_url!r})"

    # -- the protocol -----------------------------------------------------------------------

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        """Boxes (and DINO-X masks) for `phrases` on one RGB frame; ``["<prompt_free>"]`` finds everything.

        Raises:
            DetectorUnavailable: this keyframe failed after retries (network, 429, 5xx, timeout).
            DetectorAccessError: bad token or exhausted quota (fatal).
        """
        prompt_free = PROMPT_FREE in phrases
        if prompt_free and self.spec.model != CLOUD_MODELS["dino-x"].model:
            raise PromptError(f"prompt-free mode ({PROMPT_FREE}) needs --detector dino-x, not {self.name}")
        if not self.spec.text:
            raise PromptError(f"{self.name} finds things by example only: give --exemplar / --exemplar-image, "
                              "or use --detector dino-x for text")
        objects, scale = self._task(frame, {"type": "universal"} if prompt_free
                                    else {"type": "text", "text": " . ".join(phrases)})
        return self._detections(objects, phrases, prompt_free, frame.shape[:2], scale)

    def detect_prompt(self, frame: np.ndarray, prompt: VisualPrompt) -> sv.Detections:
        """Boxes (and DINO-X masks) for `prompt`'s phrases (one text task) and examples (one visual task per
        label); class ids index ``prompt.labels``. Raises as :meth:`detect`."""
        labels = list(prompt.labels)
        found = []
        if prompt.phrases:
            found.append(self.detect(frame, list(prompt.phrases)))
        for k, visual in self.visual_prompts(prompt):
            objects, scale = self._task(frame, visual)
            for obj in objects:  # one label per task: every object is that label's
                obj["category"] = labels[k]
            found.append(self._detections(objects, labels, False, frame.shape[:2], scale))
        xyxy = np.concatenate([f.xyxy for f in found])
        score = np.concatenate([f.confidence for f in found])
        class_id = np.concatenate([f.class_id for f in found])
        masks = [f.mask for f in found]
        # The text and visual tasks of one label may find the same object: keep the best box.
        kept = class_nms(xyxy, score, class_id, self.nms_iou)
        merged = make_detections(xyxy[kept], score[kept], class_id[kept], labels)
        if all(m is not None for m in masks):
            merged.mask = np.concatenate(masks)[kept]
        return merged

    def visual_prompts(self, prompt: VisualPrompt) -> list[tuple[int, dict]]:
        """(label index, the API's visual prompt) for each label with examples: encoded once per prompt."""
        if self._visual is not None and self._visual[0] is prompt:
            return self._visual[1]
        if any(not e.positive for e in prompt.examples):
            raise PromptError(f"{self.name} takes positive exemplars only: drop the negative ones")
        encoded: dict[int, tuple[str, float]] = {}  # each example image uploaded in one form
        out = []
        for k, concept in enumerate(prompt.concepts()):
            if not concept.positives:
                continue
            images: dict[int, dict] = {}
            for example in concept.positives:
                if id(example.image) not in encoded:
                    encoded[id(example.image)] = encode_frame(example.image, self.image_max_side)
                uri, scale = encoded[id(example.image)]
                entry = images.setdefault(id(example.image), {"image": uri, "interactions": []})
                entry["interactions"].append({"type": "rect", "rect": [round(v * scale, 2) for v in example.box],
                                              "category_id": 1})
            out.append((k, {"type": "visual_images", "visual_images": list(images.values())}))
        self._visual = (prompt, out)
        return out

    def _task(self, frame: np.ndarray, prompt: dict) -> tuple[list[dict], float]:
        """Run one detection task with this ``prompt`` on `frame`: (objects, the scale the frame was sent at)."""
        image, scale = encode_frame(frame, self.image_max_side)
        body: dict[str, Any] = {
            "model": self.spec.model,
            "image": image,
            "prompt": prompt,
            "targets": ["bbox", "mask"] if self.masks else ["bbox"],
            "bbox_threshold": self.box_threshold,
            "iou_threshold": self.nms_iou,
        }
        if self.masks:
            body["mask_format"] = "coco_rle"
        task = self._call("POST", self.spec.path, body)
        uuid = task.get("task_uuid") if isinstance(task, dict) else None
        if not uuid:
            raise DetectorUnavailable(f"DDS cloud API answered without a task id ({self.api_url})", "server")
        objects = self._wait(str(uuid))
        self._detected = True
        return objects, scale

    # -- results ----------------------------------------------------------------------------

    def _detections(self, objects: list[dict], phrases: Sequence[str], prompt_free: bool,
                    frame_hw: tuple[int, int], scale: float) -> sv.Detections:
        h, w = frame_hw
        xyxy, scores, class_id, names, masks = [], [], [], [], []
        for obj in objects:
            box = obj.get("bbox")
            if not box or len(box) != 4:
                continue
            name = str(obj.get("category", "")).strip().lower()
            if prompt_free:
                if name not in self.categories:
                    self.categories.append(name)
                k = self.categories.index(name)
            else:
                k = _phrase_index(name, phrases)
                if k is None:
                    logger.debug("DDS returned category %r, not in the prompt; skipped", name)
                    continue
                name = phrases[k]
            xyxy.append(np.asarray(box, dtype=np.float32) / scale)
            scores.append(float(obj.get("score", 1.0)))
            class_id.append(k)
            names.append(name)
            masks.append(_decode_mask(obj.get("mask"), (h, w)) if self.masks else None)
        if not xyxy:
            return make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), phrases)
        boxes = np.stack(xyxy)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        # supervision holds masks for all boxes or none: a box without one goes to SAM 2 as a box.
        mask = np.stack(masks) if masks and all(m is not None for m in masks) else None
        return sv.Detections(xyxy=boxes, mask=mask, confidence=np.asarray(scores, dtype=np.float32),
                             class_id=np.asarray(class_id, dtype=int),
                             data={"class_name": np.asarray(names, dtype=object)})

    # -- HTTP -------------------------------------------------------------------------------

    def _wait(self, uuid: str) -> list[dict]:
        deadline = time.monotonic() + self.task_timeout
        while True:
            data = self._call("GET", f"/v2/task_status/{uuid}")
            data = data if isinstance(data, dict) else {}
            status = data.get("status")
            if status == "success":
                result = data.get("result") or {}
                return list(result.get("objects") or [])
            if status == "failed":
                raise DetectorUnavailable(f"DDS task failed: {_one_line(data.get('error'), self._token)}", "task")
            if time.monotonic() + self.poll_interval > deadline:
                raise DetectorUnavailable(f"DDS task not finished after {self.task_timeout:g} s", "timeout")
            time.sleep(self.poll_interval)

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        """One API call with retries; returns the answer's ``data``."""
        url = self.api_url + path
        payload = json.dumps(body).encode() if body is not None else None
        attempt = 0
        while True:
            try:
                return self._once(method, url, payload)
            except DetectorUnavailable as exc:
                if attempt >= self.retries:
                    if exc.reason == "network" and not self._answered:
                        # Never reached at all: a wrong URL or no network, not a passing blip.
                        raise PromptrackError(
                            f"cannot reach the DDS cloud API at {self.api_url} ({exc}): check the network "
                            "or detector.api_url") from None
                    raise DetectorUnavailable(f"{exc} (after {attempt + 1} attempts)", exc.reason) from None
                delay = min(30.0, self.backoff * 2 ** attempt) * (0.75 + 0.5 * random.random())
                delay = max(delay, exc.retry_after)
                logger.warning("DDS cloud API: %s; retry %d/%d in %.1f s", exc, attempt + 1, self.retries, delay)
                time.sleep(delay)
                attempt += 1

    def _once(self, method: str, url: str, payload: bytes | None) -> Any:
        request = urllib.request.Request(url, data=payload, method=method, headers={
            "Token": self._token, "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
            status = 200
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read() or b""
            self._answered = True
            self._raise_for_http(status, raw, exc.headers.get("Retry-After") if exc.headers else None)
        except (TimeoutError, socket.timeout) as exc:
            raise DetectorUnavailable(f"no answer within {self.timeout:g} s", "timeout") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise DetectorUnavailable(f"no answer within {self.timeout:g} s", "timeout") from exc
            raise DetectorUnavailable(_one_line(exc.reason, self._token), "network") from exc
        except (OSError, http.client.HTTPException) as exc:  # reset, dropped or garbled mid-answer
            raise DetectorUnavailable(_one_line(exc, self._token), "network") from exc
        self._answered = True
        try:
            answer = json.loads(raw)
        except ValueError:
            raise DetectorUnavailable(f"DDS cloud API sent no JSON (HTTP {status})", "server") from None
        if not isinstance(answer, dict):
            raise DetectorUnavailable(f"DDS cloud API sent an unexpected answer (HTTP {status})", "server")
        if answer.get("code", 0) != 0:
            self._raise_for_message(status, str(answer.get("msg", "")))
        return answer.get("data")

    def _raise_for_http(self, status: int, raw: bytes, retry_after: str | None) -> None:
        try:
            message = str(json.loads(raw).get("msg", ""))
        except (ValueError, AttributeError):
            message = raw.decode("utf-8", "replace")
        if status in (401, 403) or _is_quota(message):
            self._raise_for_message(status, message or "unauthorized", auth=status in (401, 403))
        if status == 429 or status == 408 or status >= 500:
            reason = "rate-limit" if status == 429 else "timeout" if status == 408 else "server"
            raise DetectorUnavailable(f"HTTP {status} {_one_line(message, self._token)}".strip(), reason,
                                      _seconds(retry_after))
        self._raise_for_message(status, message or f"HTTP {status}")

    def _raise_for_message(self, status: int, message: str, auth: bool = False) -> None:
        text = _one_line(message, self._token)
        low = message.lower()
        if _is_quota(message):
            raise DetectorAccessError(
                f"the DDS cloud API quota of this token is used up ({text}): request more at {TOKEN_URL} "
                "or use a local detector (--detector grounding-dino)")
        if "rate limit" in low or "too many" in low:
            raise DetectorUnavailable(f"rate limited ({text})", "rate-limit")
        if auth or ("token" in low and any(w in low for w in ("invalid", "not found", "expired", "unauthor",
                                                                 "wrong", "illegal", "missing"))):
            raise DetectorAccessError(
                f"the DDS cloud API rejected the token (HTTP {status}: {text}): set a valid {TOKEN_ENV} "
                f"or --set detector.token=<token> (get one at {TOKEN_URL})")
        if not self._detected:
            # A refusal before any detection worked is a setup problem (model name, URL): stop.
            raise PromptrackError(f"the DDS cloud API refused the request (HTTP {status}: {text}): check "
                                  "detector.name and detector.api_url")
        raise DetectorUnavailable(f"DDS cloud API error (HTTP {status}: {text})", "server")


def encode_frame(frame: np.ndarray, max_side: int, quality: int = 90) -> tuple[str, float]:
    """RGB frame -> (JPEG data URI, scale), downscaled so its longest side is at most `max_side`."""
    h, w = frame.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        scale = frame.shape[1] / w  # the scale actually applied, after rounding
    ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise PromptrackError("cannot JPEG-encode the keyframe for the DDS cloud API")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii"), scale


def _decode_mask(rle: dict | None, frame_hw: tuple[int, int]) -> np.ndarray | None:
    """A COCO RLE mask (of the uploaded, maybe downscaled image) -> boolean mask of frame size."""
    if not rle or "counts" not in rle or "size" not in rle:
        return None
    from pycocotools import mask as mask_utils

    mh, mw = (int(x) for x in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        coded = mask_utils.frPyObjects({"size": [mh, mw], "counts": counts}, mh, mw)
    else:
        coded = {"size": [mh, mw], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    mask = mask_utils.decode(coded)
    if (mh, mw) != tuple(frame_hw):
        mask = cv2.resize(mask, (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_NEAREST)
    return mask.astype(bool)


def _phrase_index(category: str, phrases: Sequence[str]) -> int | None:
    """The prompt phrase a returned category names (exact, then ignoring spaces, then the only phrase)."""
    if category in phrases:
        return list(phrases).index(category)
    squeezed = [p.replace(" ", "") for p in phrases]
    if category.replace(" ", "") in squeezed:
        return squeezed.index(category.replace(" ", ""))
    return 0 if len(phrases) == 1 else None


def _is_quota(message: str) -> bool:
    low = message.lower()
    return "quota" in low or "insufficient balance" in low or "out of credit" in low


def _seconds(value: str | None) -> float:
    try:
        return min(60.0, max(0.0, float(value))) if value else 0.0
    except ValueError:
        return 0.0


def _one_line(value: Any, secret: str) -> str:
    """A message fit for one line of output, with the token blanked out."""
    text = " ".join(str(value or "").split())[:200]
    return text.replace(secret, "***") if secret else text


def _builder(model: str):
    def build(config, device: str) -> DDSCloudDetector:
        return DDSCloudDetector(model, token=config.token, api_url=config.api_url, box_threshold=config.box_threshold,
                                nms_iou=config.nms_iou, timeout=config.timeout, retries=config.retries,
                                image_max_side=config.image_max_side)
    return build


_NEEDS = f"token ${TOKEN_ENV} (DeepDataSpace cloud)"
register(DetectorSpec("dino-x", _builder("dino-x"), needs=_NEEDS,
                      about=f"cloud, boxes + masks; prompt {PROMPT_FREE} finds everything",
                      aliases=("dinox", "dino_x", "dino-x-1.0"), exemplars=("positive",)))


def _by_example_only(phrases: Sequence[str]) -> None:
    if phrases:
        raise PromptError("t-rex-2 finds things by example only: drop --prompt (give --exemplar / --exemplar-image), "
                          "or use --detector dino-x for text and examples")


register(DetectorSpec("t-rex-2", _builder("t-rex-2"), needs=_NEEDS, about="cloud, boxes, by example only (--exemplar)",
                      aliases=("trex2", "t-rex2", "trex-2", "t-rex-2.0"), check_prompt=_by_example_only,
                      exemplars=("positive",)))
register(DetectorSpec("grounding-dino-1.5-pro", _builder("grounding-dino-1.5-pro"), needs=_NEEDS, about="cloud, boxes",
                      aliases=("grounding-dino-1.5", "gdino-1.5-pro")))
register(DetectorSpec("grounding-dino-1.6-pro", _builder("grounding-dino-1.6-pro"), needs=_NEEDS, about="cloud, boxes",
                      aliases=("grounding-dino-1.6", "gdino-1.6-pro")))
