# MobileNet course workbook. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The offline data pack: use ../shared/data when it exists and WORKBOOK_DATA is not already set.
WORKBOOK_DATA ?= $(if $(wildcard ../shared/data/MANIFEST.sha256),$(abspath ../shared/data),)
export WORKBOOK_DATA
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0

.DEFAULT_GOAL := help
.PHONY: help setup workbook test browser sandbox bench lab tensorboard lint clean student grade pack

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'
	@echo "  data pack: WORKBOOK_DATA=$(if $(WORKBOOK_DATA),$(WORKBOOK_DATA),(unset: files are downloaded))$(if $(WORKBOOK_MIRROR),  mirror: WORKBOOK_MIRROR=$(WORKBOOK_MIRROR),)"

setup: $(STAMP) ## create .venv with the pinned packages and the helpers package (editable)

$(STAMP): requirements.txt pyproject.toml jupyter/overrides.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m helpers.kernel install
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $(STAMP)

workbook: setup ## execute every notebook into build/notebooks and render build/html
	$(BIN)/python -m helpers.notebooks

test: setup browser sandbox ## unit tests + every notebook in fast mode + 01/04/08 in Chromium (pytest)
	$(BIN)/python -m pytest

# $(call apt_install,PACKAGE,WHAT FOR): Debian's package with apt-get, as root or with password-less
# sudo (apt-get update only when the first try fails); does nothing elsewhere. One shell line.
apt_install = SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || (command -v sudo >/dev/null && sudo -n true 2>/dev/null && echo sudo) || echo none ); \
	if [ "$$SUDO" != none ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's $(1) $(2)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) >/dev/null 2>&1; } ; \
	fi

# The real-browser test drives Chromium: Debian's package (apt, as root or with sudo), else
# Playwright's own download (online); otherwise stop with one line saying how to provide one.
browser: setup ## a Chromium for the browser test
	@if [ -n "$$WORKBOOK_CHROMIUM" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	$(call apt_install,chromium,for the browser test); \
	command -v chromium >/dev/null && exit 0; \
	$(BIN)/python -m playwright install chromium >/dev/null 2>&1 && exit 0; \
	echo "no Chromium for the browser test: apt-get install chromium (Debian), or .venv/bin/python -m playwright install chromium (online), or set WORKBOOK_CHROMIUM" >&2; exit 1

# The grader runs every submission under bubblewrap: Debian's package (apt, as root or with sudo) when
# bwrap is missing; otherwise stop with one line saying how to provide it.
sandbox: ## bubblewrap, the grading sandbox
	@if command -v bwrap >/dev/null && command -v prlimit >/dev/null; then exit 0; fi; \
	$(call apt_install,bubblewrap,for the grading sandbox); \
	command -v bwrap >/dev/null && command -v prlimit >/dev/null && exit 0; \
	echo "no bubblewrap for the grading sandbox: apt-get install bubblewrap (Debian/Ubuntu; prlimit is in util-linux), dnf install bubblewrap (Fedora), or grade with --no-sandbox" >&2; exit 1

student: setup ## write the student edition of every notebook into build/student
	$(BIN)/python -m helpers student --out build/student

grade: setup sandbox ## grade SUBMISSIONS="a.ipynb b.ipynb" into build/grades, sandboxed (JOBS=2 in parallel)
	$(BIN)/python -m helpers grade $(SUBMISSIONS) --out build/grades --jobs $(or $(JOBS),1)

pack: setup ## build an offline data pack: DIR=/path (ONLY="name ..." for some files, VERIFY=1 to check one)
	@test -n "$(DIR)" || { echo "usage: make pack DIR=/path/to/pack [ONLY='name ...'] [VERIFY=1]" >&2; exit 2; }
	$(BIN)/python -m helpers pack "$(DIR)" $(if $(ONLY),--only $(ONLY),) $(if $(VERIFY),--verify,)

bench: setup ## speed and memory ratios, measured side by side
	$(BIN)/python -m helpers.bench

lab: setup ## open the workbook in JupyterLab with the project's kernel (LAB_ARGS: more options)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) \
		--FileCheckpoints.checkpoint_dir=$(CURDIR)/build/checkpoints $(LAB_ARGS) notebooks/

tensorboard: setup ## open the training logs of notebook 06 (build/logs)
	$(BIN)/tensorboard --logdir build/logs

lint: setup ## ruff on helpers, tests and the notebooks
	$(BIN)/ruff check helpers tests notebooks

clean: ## remove build outputs (keeps .venv and the download cache)
	rm -rf build .pytest_cache .ruff_cache
