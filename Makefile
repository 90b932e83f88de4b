# Two commands matter: `make run` (execute every lesson, write build/report.md) and `make test`.
# Both create .venv on first use. Without make: `python -m course_utils run|test` in an env where
# `pip install -e ".[dev]"` was done.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch builds for a fresh .venv. Already have a working torch? `make run TORCH_PINS= VENV_FLAGS=--system-site-packages`
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
VENV_FLAGS ?=
PROFILE ?= auto
PYTEST_ARGS ?=

.PHONY: run test site lab clean clean-notebooks student doctor bench rehearse venv matrix matrix-cell

venv: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install $(TORCH_PINS)
	$(PY) -m pip install -e ".[dev,site]"
	touch $@

run: venv
	$(PY) -m course_utils run --profile $(PROFILE)

# Every lesson's light profile on the shapes world at the real datasets' sizes, 2 threads (Binder's size),
# offline; merges wall and CPU minutes per lesson into docs/measurements/rehearse-light.json (commit it).
REHEARSE_ARGS ?=
rehearse: venv
	$(PY) -m course_utils rehearse --profile light $(REHEARSE_ARGS)

test: venv
	$(PY) -m course_utils test $(PYTEST_ARGS)

site: venv
	$(PY) -m course_utils site

lab: venv
	$(PY) -m course_utils lab

doctor: venv
	$(PY) -m course_utils doctor

student: venv
	$(PY) -m course_utils student

bench: venv
	$(PY) benchmarks/bench_fit.py

clean-notebooks: venv
	$(PY) -m course_utils nb sync

clean:
	rm -rf build .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

# `make matrix` (not part of `make test`): the course on the Pythons and torches learners have, each in its
# own venv under build/matrix/: Colab's Python 3.12 with the newest torch, and the oldest Python and torch
# pyproject.toml declares. Each cell runs the fast tests below plus two lessons' smoke runs (their 4 tests).
# Pythons come from pyenv (or name them: `make matrix MATRIX_NEW_PY=python3.12`). Torch for these Pythons
# comes from PyPI (a CUDA build, several GB with its nvidia-* packages, downloaded once per venv).
PYENV_VERSIONS ?= $(HOME)/.pyenv/versions
MATRIX_NEW_PY ?= $(lastword $(wildcard $(PYENV_VERSIONS)/3.12*/bin/python))
MATRIX_NEW_PINS ?= torch torchvision
MATRIX_OLD_PY ?= $(lastword $(wildcard $(PYENV_VERSIONS)/3.10*/bin/python))
# The floor in pyproject.toml (torch>=2.3, Python>=3.10); torch 2.3's wheels were built for NumPy 1.
MATRIX_OLD_PINS ?= torch==2.3.1 torchvision==0.18.1 "numpy<2"
MATRIX_TESTS ?= tests/test_platforms.py tests/test_config.py tests/test_paths.py tests/test_record.py \
	tests/test_repo.py tests/test_train_loop.py tests/test_train_fit.py tests/test_metrics.py \
	tests/test_data_shapes.py tests/test_data_download.py
MATRIX_LESSONS ?= 01_image_classification or 07_resnet
matrix:
	@test -n "$(MATRIX_NEW_PY)" || { echo "no Python 3.12 found: make matrix MATRIX_NEW_PY=/path/to/python3.12"; exit 2; }
	@test -n "$(MATRIX_OLD_PY)" || { echo "no Python 3.10 found: make matrix MATRIX_OLD_PY=/path/to/python3.10"; exit 2; }
	$(MAKE) matrix-cell CELL=py312-newest CELL_PY=$(MATRIX_NEW_PY) CELL_PINS='$(MATRIX_NEW_PINS)'
	$(MAKE) matrix-cell CELL=py310-oldest CELL_PY=$(MATRIX_OLD_PY) CELL_PINS='$(MATRIX_OLD_PINS)'
	@echo "matrix: both cells passed"; cat build/matrix/*.versions

matrix-cell:
	test -x build/matrix/$(CELL)/bin/python || $(CELL_PY) -m venv build/matrix/$(CELL)
	build/matrix/$(CELL)/bin/python -m pip install -q $(CELL_PINS) -e ".[dev]"
	build/matrix/$(CELL)/bin/python -c "import sys, torch, numpy; print('$(CELL): python', sys.version.split()[0], \
		'torch', torch.__version__, 'numpy', numpy.__version__)" | tee build/matrix/$(CELL).versions
	build/matrix/$(CELL)/bin/python -m pytest -p no:xdist -o addopts="-ra" -q $(MATRIX_TESTS) \
		tests/test_notebooks.py -k "not Test_ or $(MATRIX_LESSONS)"
