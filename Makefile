# Two entry points: `make demo` (set up, then track a sample video) and `make test`.
# Both go through `make setup`, which is idempotent: it (re)installs only when the
# inputs (pyproject.toml, constraints.txt, this Makefile) changed since the last run.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
TORCH_VERSION := 2.13.0
SAM2_VERSION := 1.1.0
ASSETS ?= ../shared/assets
DEMO_VIDEO ?= $(ASSETS)/videos/bedroom.mp4
DEMO_PROMPT ?= person
DEMO_OUT ?= out/demo

# Reaches pip's isolated build environments too (`-c` does not).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# torch first, pinned. On a CPU-only machine pip takes the local CPU build when one is
	# offered (find-links); on a machine with an NVIDIA GPU the default PyPI wheel is CUDA.
	$(PY) -m pip install -q -c constraints.txt torch==$(TORCH_VERSION)
	# sam2 declares torchvision, whose only wheel for this torch is a CUDA build that breaks
	# imports on the CPU torch: install it without dependencies and without building its
	# CUDA extension (we fill mask holes ourselves).
	$(PY) -m pip install -q -c constraints.txt hydra-core iopath
	SAM2_BUILD_CUDA=0 $(PY) -m pip install -q --no-deps --no-build-isolation -c constraints.txt sam2==$(SAM2_VERSION)
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	# trackeval checks the association benchmark's metrics. It declares opencv-python, which would
	# clash with opencv-python-headless (same cv2 module); the metrics need neither, so no deps.
	$(PY) -m pip install -q --no-deps -c constraints.txt trackeval==1.3.0
	# roboflow `trackers` (ByteTrack, the association benchmark's box-tracker baseline) declares
	# opencv-python too: same reason, no deps (its others are in the test extra).
	$(PY) -m pip install -q --no-deps -c constraints.txt trackers==2.6.1
	# Never leave a torchvision behind on a CPU machine (see above).
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip uninstall -q -y torchvision 2>/dev/null || true; fi
	$(PY) -c "import torch, sam2, supervision, transformers, av, onnxruntime, pycocotools, promptrack.pipeline; print('setup ok: torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/track-video $(DEMO_VIDEO) --prompt "$(DEMO_PROMPT)" -o $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) out .pytest_cache
