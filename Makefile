# Two entry points: `make demo` (set up, then track a sample video) and `make test`.
# Both go through `make setup`, which is idempotent: it (re)installs only when the
# inputs (pyproject.toml, setup.py, constraints.txt, this Makefile) changed since the last run.
#
# What goes where: everything is installed into .venv/ (nothing outside it). torch is installed
# first and pinned (constraints.txt). On a machine without an NVIDIA GPU pip takes the CPU build
# where one is offered (find-links) and torchvision is left out: sam2 declares it, but its only
# wheel for this torch is a CUDA build that breaks imports on the CPU torch, and nothing here
# needs it. On a machine with an NVIDIA GPU (`nvidia-smi -L` works) the default PyPI wheels are
# the CUDA builds, and torchvision is installed to match, for users' other tools.
# sam2 is installed without its CUDA extension (we fill mask holes ourselves).
# pip's output goes to .venv/setup.log; a failing step prints its tail.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
LOG := $(VENV)/setup.log
TORCH_VERSION := 2.13.0
SAM2_VERSION := 1.1.0
DEMO_VIDEO ?= assets/bedroom.mp4
DEMO_PROMPT ?= person
DEMO_OUT ?= out/demo
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
# Without a GPU the demo takes the CPU-friendly preset with SAM 2 at 384 px and the first 1.5 seconds
# (36 frames, a keyframe every 12: 3 of Grounding DINO's ~20 s CPU keyframes, and every track confirmed
# by its second detection before its first frame is written): about two minutes on an idle 2-core machine.
ifeq ($(HAS_GPU),1)
DEMO_ARGS ?=
else
DEMO_ARGS ?= --config fast --max-frames 36 --detect-every 12 --set tracker.image_size=384
endif

# Reaches pip's isolated build environments too (`-c` does not).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The editable install's extras; a variable, since a comma inside $(call ...) would split its arguments.
EXTRAS := .[test,batch]

# $(call step,what,command): one line for the user, the command's output to the log.
step = @echo "setup: $(1)"; ( $(2) ) >>$(LOG) 2>&1 || { tail -n 25 $(LOG); echo "make setup: failed while $(1); full log: $(LOG)"; exit 1; }

.PHONY: setup demo test assets clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt Makefile
	@test -x $(PY) || { echo "setup: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@: > $(LOG)
	$(call step,upgrading pip,$(PY) -m pip install --upgrade pip setuptools wheel)
ifeq ($(HAS_GPU),1)
	$(call step,installing torch $(TORCH_VERSION) and torchvision (CUDA: an NVIDIA GPU is present),$(PY) -m pip install torch==$(TORCH_VERSION) torchvision)
else
	$(call step,installing torch $(TORCH_VERSION) (CPU: no NVIDIA GPU found),$(PY) -m pip install torch==$(TORCH_VERSION))
endif
	$(call step,installing sam2 $(SAM2_VERSION) (no CUDA extension),$(PY) -m pip install hydra-core iopath && SAM2_BUILD_CUDA=0 $(PY) -m pip install --no-deps --no-build-isolation sam2==$(SAM2_VERSION))
	$(call step,installing promptrack (editable) with its test tools and Ray (batch),$(PY) -m pip install -e '$(EXTRAS)')
	$(call step,installing trackeval and roboflow trackers (association metrics and ByteTrack baseline; without their opencv-python),$(PY) -m pip install --no-deps trackeval==1.3.0 trackers==2.6.1)
ifneq ($(HAS_GPU),1)
	$(call step,removing torchvision (CPU machine: its CUDA wheel breaks the CPU torch),$(PY) -m pip uninstall -y torchvision || true)
endif
	@$(PY) -c "import torch, sam2, supervision, transformers, av, onnxruntime, pycocotools, promptrack.pipeline.loop; print('setup ok: torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu', '(into $(VENV))')"
	@touch $(STAMP)

demo: setup
	@test "$(HAS_GPU)" = 1 || echo "demo: no NVIDIA GPU found: CPU-friendly run ($(DEMO_ARGS)); set DEMO_ARGS= for the full video at 1024 px"
	$(VENV)/bin/track-video $(DEMO_VIDEO) --prompt "$(DEMO_PROMPT)" -o $(DEMO_OUT) $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q tests

# The tests' and notebooks' real data (YOLOX-Nano, the SAM 2 bedroom clip, 4 DAVIS 2016 sequences), each
# from its public origin and checked against its sha256, into $PROMPTRACK_ASSETS or ~/.cache/promptrack/assets.
assets: setup
	$(PY) -m promptrack.assets

clean:
	rm -rf $(VENV) out .pytest_cache build dist
