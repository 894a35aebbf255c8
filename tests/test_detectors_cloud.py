"""DINO-X / Grounding DINO 1.x Pro cloud detector against a fake DeepDataSpace V2 API on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from promptrack.pipeline.config import Config, DetectorConfig, config_to_dict, load_config
from promptrack.pipeline.detectors import DetectorAccessError, DetectorUnavailable, build_detector
from promptrack.pipeline.detectors.dds_cloud import DDSCloudDetector
from promptrack.pipeline.errors import PromptError, PromptrackError

TOKEN = "tok-0123456789abcdef"
FRAME = np.full((480, 854, 3), 90, np.uint8)  # 854x480; uploaded at 427x240 with image_max_side=427


class FakeDDS:
    """Answers the V2 task API: POST a detection task, GET its status (running, then success).

    ``script`` is what the next POSTs get, in order (then "ok"): "ok", an HTTP status (429, 500,
    401), "sleep" (no answer within the client's timeout), "quota", "bad-token" (HTTP 200 with a
    non-zero code, as the API also answers), "task-failed" (the task's status ends "failed").
    """

    def __init__(self) -> None:
        self.script: list = []
        self.requests: list[dict] = []
        self.tasks: dict[str, dict] = {}
        self.polls = 0
        self.retry_after = "0"  # what a 429 asks the client to wait
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                fake.requests.append({"path": self.path, "token": self.headers.get("Token"), "body": body})
                if self.headers.get("Token") != TOKEN:
                    return self._send(401, {"code": 401, "msg": "Invalid token"})
                action = fake.script.pop(0) if fake.script else "ok"
                if action == "sleep":
                    time.sleep(1.0)
                    try:  # the client has given up by now
                        return self._send(200, {"code": 0, "msg": "ok", "data": {"task_uuid": "late"}})
                    except OSError:
                        return None
                if action == "quota":
                    return self._send(200, {"code": 1011, "msg": "Token out of Quota"})
                if action == "bad-token":
                    return self._send(200, {"code": 1001, "msg": "Token not found"})
                if isinstance(action, int):
                    return self._send(action, {"code": action, "msg": "busy" if action == 429 else "oops"},
                                      {"Retry-After": fake.retry_after} if action == 429 else None)
                task = str(uuid.uuid4())
                fake.tasks[task] = {"body": body, "failed": action == "task-failed"}
                return self._send(200, {"code": 0, "msg": "ok", "data": {"task_uuid": task}})

            def do_GET(self):  # noqa: N802
                fake.polls += 1
                task_id = self.path.rsplit("/", 1)[-1]
                if not self.path.startswith("/v2/task_status/") or task_id not in fake.tasks:
                    return self._send(404, {"code": 404, "msg": "Resource Not Found"})
                task = fake.tasks[task_id]
                if not task.get("seen"):
                    task["seen"] = True
                    return self._send(200, {"code": 0, "msg": "ok", "data": {"status": "running", "uuid": task_id}})
                if task["failed"]:
                    return self._send(200, {"code": 0, "msg": "ok",
                                            "data": {"status": "failed", "error": "model crashed", "result": None}})
                return self._send(200, {"code": 0, "msg": "ok", "data": {
                    "status": "success", "uuid": task_id, "result": {"objects": fake.objects(task["body"])}}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @staticmethod
    def objects(body: dict) -> list[dict]:
        """Two objects in the uploaded image's pixels, with COCO RLE masks when asked."""
        header, data = body["image"].split(",", 1)
        assert header == "data:image/jpeg;base64"
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        if body["prompt"]["type"] == "universal":
            names = ["chair", "lamp"]
        elif body["prompt"]["type"] == "visual_images":  # the V2 visual prompt: example images with rects
            for entry in body["prompt"]["visual_images"]:
                ex_header, ex_data = entry["image"].split(",", 1)
                assert ex_header == "data:image/jpeg;base64"
                example = cv2.imdecode(np.frombuffer(base64.b64decode(ex_data), np.uint8), cv2.IMREAD_COLOR)
                for act in entry["interactions"]:
                    assert act["type"] == "rect" and isinstance(act["category_id"], int)
                    x1, y1, x2, y2 = act["rect"]
                    assert 0 <= x1 < x2 <= example.shape[1] and 0 <= y1 < y2 <= example.shape[0]
            names = ["1", "1"]  # one category per task in promptrack's requests
        else:
            names = [p.strip() for p in body["prompt"]["text"].split(".") if p.strip()]
            names = (names * 2)[:2]
        objects = []
        for i, (name, box) in enumerate(zip(names, ([10, 20, 110, 220], [200, 40, 400, 120]))):
            obj = {"bbox": box, "score": 0.9 - 0.1 * i, "category": name.title()}
            if "mask" in body["targets"]:
                m = np.zeros((h, w), np.uint8, order="F")
                m[box[1]:box[3], box[0]:box[2]] = 1
                rle = mask_utils.encode(m)
                obj["mask"] = {"counts": rle["counts"].decode(), "size": [h, w]}
            objects.append(obj)
        return objects

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    fake = FakeDDS()
    yield fake
    fake.close()


def detector(api: FakeDDS, model: str = "dino-x", **kwargs) -> DDSCloudDetector:
    options = dict(token=TOKEN, api_url=api.url, timeout=0.5, retries=2, image_max_side=427, backoff=0.01,
                   poll_interval=0.01, task_timeout=5.0)
    options.update(kwargs)
    return DDSCloudDetector(model, **options)


def test_dino_x_boxes_and_masks_come_back_in_frame_pixels(api):
    found = detector(api).detect(FRAME, ["person", "red car"])
    sent = api.requests[0]
    assert sent["path"] == "/v2/task/dinox/detection" and sent["token"] == TOKEN
    body = sent["body"]
    assert body["model"] == "DINO-X-1.0" and body["prompt"] == {"type": "text", "text": "person . red car"}
    assert body["targets"] == ["bbox", "mask"] and body["mask_format"] == "coco_rle"
    image = cv2.imdecode(np.frombuffer(base64.b64decode(body["image"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (240, 427)  # longest side bounded by image_max_side
    assert api.polls >= 2  # polled while "running"
    assert found.data["class_name"].tolist() == ["person", "red car"] and found.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(found.xyxy, [[20, 40, 220, 440], [400, 80, 800, 240]], atol=1)
    np.testing.assert_allclose(found.confidence, [0.9, 0.8], atol=1e-6)
    assert found.mask.shape == (2, 480, 854) and found.mask.dtype == bool
    ys, xs = np.nonzero(found.mask[0])
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (20, 40, 219, 439)


def test_prompt_free_labels_are_the_returned_categories(api):
    det = detector(api)
    found = det.detect(FRAME, ["<prompt_free>"])
    assert api.requests[0]["body"]["prompt"] == {"type": "universal"}
    assert found.data["class_name"].tolist() == ["chair", "lamp"] and found.class_id.tolist() == [0, 1]
    assert det.categories == ["chair", "lamp"]


def test_grounding_dino_pro_sends_boxes_only(api):
    found = detector(api, "grounding-dino-1.6-pro").detect(FRAME, ["dog"])
    body = api.requests[0]["body"]
    assert api.requests[0]["path"] == "/v2/task/grounding_dino/detection"
    assert body["model"] == "GroundingDino-1.6-Pro" and body["targets"] == ["bbox"] and "mask_format" not in body
    assert found.mask is None and found.data["class_name"].tolist() == ["dog", "dog"]
    with pytest.raises(PromptError, match="dino-x"):
        detector(api, "grounding-dino-1.5-pro").detect(FRAME, ["<prompt_free>"])


def test_429_and_500_are_retried_with_backoff(api, caplog):
    api.script = [429, 500]
    with caplog.at_level(logging.DEBUG):
        found = detector(api).detect(FRAME, ["person"])
    assert len(api.requests) == 3 and len(found) == 2
    assert "retry 1/2" in caplog.text and TOKEN not in caplog.text


def test_retry_after_is_honoured(api):
    api.script, api.retry_after = [429], "0.4"
    start = time.monotonic()
    detector(api).detect(FRAME, ["person"])
    assert time.monotonic() - start >= 0.4 and len(api.requests) == 2


def test_nothing_found_is_an_empty_detections_in_the_protocol_shape(api, monkeypatch):
    monkeypatch.setattr(FakeDDS, "objects", staticmethod(lambda body: []))
    found = detector(api).detect(FRAME, ["person"])
    assert len(found) == 0 and found.data["class_name"].tolist() == [] and found.mask is None


def test_persistent_server_errors_skip_the_keyframe(api):
    det = detector(api)
    det.detect(FRAME, ["person"])  # the service worked once
    api.script = [500, 502, 503]
    with pytest.raises(DetectorUnavailable, match="after 3 attempts") as info:
        det.detect(FRAME, ["person"])
    assert info.value.reason == "server" and isinstance(info.value, PromptrackError)
    assert len(api.requests) == 4
    assert len(det.detect(FRAME, ["person"])) == 2  # and the next keyframe works again


def test_timeout_skips_the_keyframe(api):
    api.script = ["sleep", "sleep"]
    start = time.monotonic()
    with pytest.raises(DetectorUnavailable) as info:
        detector(api, timeout=0.3, retries=1).detect(FRAME, ["person"])
    assert info.value.reason == "timeout" and time.monotonic() - start < 3


@pytest.mark.parametrize("script", [[], ["bad-token"]], ids=["http-401", "code-in-body"])
def test_bad_token_is_one_fatal_line_without_the_token(api, script):
    api.script = script
    token = TOKEN if script else "wrong-token-42"
    with pytest.raises(DetectorAccessError) as info:
        detector(api, token=token).detect(FRAME, ["person"])
    message = str(info.value)
    assert "DDS_API_TOKEN" in message and token not in message and "\n" not in message
    assert not isinstance(info.value, DetectorUnavailable)
    assert len(api.requests) == 1  # no retry on a bad token


def test_exhausted_quota_is_fatal(api):
    api.script = ["quota"]
    with pytest.raises(DetectorAccessError, match="quota"):
        detector(api).detect(FRAME, ["person"])


def test_failed_task_skips_the_keyframe(api):
    api.script = ["task-failed"]
    with pytest.raises(DetectorUnavailable, match="model crashed") as info:
        detector(api).detect(FRAME, ["person"])
    assert info.value.reason == "task"


def test_no_network_is_fatal_at_start_but_skips_once_running(api):
    with pytest.raises(PromptrackError, match="cannot reach") as info:
        detector(api, api_url="http://127.0.0.1:9", retries=1).detect(FRAME, ["person"])
    assert not isinstance(info.value, DetectorUnavailable)
    det = detector(api, retries=1)
    det.detect(FRAME, ["person"])
    api.close()  # the network goes away mid-run
    with pytest.raises(DetectorUnavailable) as info:
        det.detect(FRAME, ["person"])
    assert info.value.reason == "network"


def test_build_from_config_reads_the_token_from_the_environment(api, monkeypatch):
    monkeypatch.delenv("DDS_API_TOKEN", raising=False)
    with pytest.raises(DetectorAccessError, match="DDS_API_TOKEN"):
        build_detector(DetectorConfig(name="dino-x", api_url=api.url))
    monkeypatch.setenv("DDS_API_TOKEN", TOKEN)
    det = build_detector(DetectorConfig(name="DINO-X", api_url=api.url, timeout=0.5, retries=0, image_max_side=427))
    assert isinstance(det, DDSCloudDetector) and det.name == "dino-x" and TOKEN not in repr(det)
    det.poll_interval = 0.01
    assert len(det.detect(FRAME, ["person"])) == 2


def test_token_is_redacted_from_the_written_config():
    config = load_config("default", [f"detector.token={TOKEN}", "detector.name=dino-x"])
    assert config.detector.token == TOKEN  # the detector still gets it
    data = config_to_dict(config)
    assert data["detector"]["token"] == "<redacted>" and TOKEN not in json.dumps(data)
    assert config_to_dict(Config())["detector"]["token"] is None
