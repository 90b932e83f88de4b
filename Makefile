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

.PHONY: run test site lab clean clean-notebooks student doctor bench rehearse venv

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
